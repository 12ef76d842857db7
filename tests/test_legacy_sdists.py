"""A version whose only file is a legacy sdist archive (``.tar.bz2``...) is rejected by name.

fetchplan reads ``.tar.gz`` and ``.zip`` sdists. A version offering only another archive used to
vanish, so "no version satisfies ==0.5.3; usable versions: 0.5.4" hid why; now it is listed as
rejected, with the reason, and a version that also has a usable file is unaffected.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from tests.conftest import MakeIndexServer, RunCli
from tests.support.wheels import Dist, build_sdist, build_wheel


def _bz2_sdist(directory: Path, name: str, version: str) -> Path:
    base = f"{name}-{version}"
    data = f"Metadata-Version: 2.2\nName: {name}\nVersion: {version}\n\n".encode()
    path = directory / f"{base}.tar.bz2"
    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:bz2") as tf:
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return path


def test_a_version_with_only_a_tar_bz2_sdist_is_listed_as_rejected(
    index_server: MakeIndexServer, run_cli: RunCli, tmp_path: Path
) -> None:
    dists = tmp_path / "dists"
    server = index_server(
        [
            _bz2_sdist(dists, "lib", "0.5.3"),
            build_wheel(dists, Dist("lib", "0.5.4")),
            # A version with both: its .tar.gz is used, the .tar.bz2 changes nothing.
            _bz2_sdist(dists, "lib", "0.5.2"),
            build_sdist(dists, Dist("lib", "0.5.2", metadata_version="2.2")),
        ]
    )
    out = run_cli("plan", "lib==0.5.3", "-i", server.index_url, "-o", "plan.json", "--no-cache")
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "no version of lib satisfies lib==0.5.3" in lines[0]
    assert "rejected: 0.5.3 (only a legacy .tar.bz2 sdist" in lines[0]
    assert "usable versions: 0.5.4, 0.5.2" in lines[0]

    out = run_cli(
        "plan", "lib==0.5.2", "-i", server.index_url, "-o", "plan.json", "--no-cache",
        "--no-build-deps",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "lib-0.5.2.tar.gz" in (tmp_path / "plan.json").read_text()
