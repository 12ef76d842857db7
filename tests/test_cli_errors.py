"""Files that cannot be written, file modes, and manifests that point outside themselves."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import MakeIndexServer, RunCli
from tests.support.hostile import make_fetched_dest
from tests.support.wheels import Dist


def test_unwritable_outputs_are_one_line_errors_naming_the_path(
    index_server: MakeIndexServer, tmp_path: Path, run_cli: RunCli
) -> None:
    server = index_server([Dist("solo", "1.0")])
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    planned = run_cli("plan", "solo", "-i", server.index_url, "-o", "adir")
    assert planned.returncode != 0
    assert planned.stderr.startswith("fetchplan: error: adir: cannot write:")
    assert planned.stderr.count("\n") == 1

    ok = run_cli("plan", "solo", "-i", server.index_url, "-o", "plan.json")
    assert ok.returncode == 0, ok.stderr
    exported = run_cli("export", "plan.json", "--format", "requirements", "-o", "adir")
    assert exported.returncode != 0
    assert exported.stderr.startswith("fetchplan: error: adir: cannot write:")
    assert "Traceback" not in exported.stderr

    fetched = run_cli("fetch", "plan.json", "--dest", "afile")
    assert fetched.returncode != 0
    assert fetched.stderr.strip().splitlines()[-1].startswith("fetchplan: error: ")
    assert "afile" in fetched.stderr
    assert "Traceback" not in fetched.stderr


def test_written_files_have_ordinary_modes(
    index_server: MakeIndexServer, tmp_path: Path, run_cli: RunCli
) -> None:
    server = index_server([Dist("solo", "1.0")])
    old = os.umask(0o022)
    try:
        for _ in range(2):  # the second fetch takes the wheel from the cache (a hard link)
            done = run_cli("plan", "solo", "-i", server.index_url, "-o", "plan.json")
            assert done.returncode == 0, done.stderr
            fetched = run_cli("fetch", "plan.json")
            assert fetched.returncode == 0, fetched.stderr
            for name in ("plan.json", "wheels/manifest.json", "wheels/solo-1.0-py3-none-any.whl"):
                assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
            (tmp_path / "wheels" / "solo-1.0-py3-none-any.whl").unlink()
    finally:
        os.umask(old)


def test_manifest_path_outside_its_directory_is_refused(tmp_path: Path, run_cli: RunCli) -> None:
    manifest_path = make_fetched_dest(tmp_path, [Dist("solo", "1.0")])
    wheel = manifest_path.parent / "solo-1.0-py3-none-any.whl"
    outside = tmp_path / "outside"
    outside.mkdir()
    wheel.rename(outside / wheel.name)
    document = json.loads(manifest_path.read_text())
    document["artifacts"][0]["path"] = f"../outside/{wheel.name}"
    manifest_path.write_text(json.dumps(document))
    venv = tmp_path / "venv"
    done = run_cli("install", str(manifest_path), "--venv", str(venv))
    assert done.returncode != 0
    assert "leaves the manifest's directory" in done.stderr
    assert not (venv / "lib").exists() or not list((venv / "lib").rglob("solo*"))


def test_install_of_a_missing_manifest_creates_no_venv(tmp_path: Path, run_cli: RunCli) -> None:
    done = run_cli("install", "nosuch.json", "--venv", "venv")
    assert done.returncode != 0
    assert done.stderr.startswith("fetchplan: error: nosuch.json")
    assert not (tmp_path / "venv").exists()
