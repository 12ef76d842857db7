"""Unpacking wheels while they download: what is taken, what is refused, what is left alone."""

from __future__ import annotations

import hashlib
import io
import stat
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from packaging.utils import NormalizedName

from fetchplan.install import StagedInstall, TargetInterpreter, WheelToInstall
from fetchplan.install.prestage import Prestager
from tests.conftest import MakeNginxServer, RunCli
from tests.support.hostile import Member, new_venv, raw_wheel, snapshot, standard_members
from tests.support.wheels import Dist

BIG = bytes(range(256)) * 4096  # 1 MiB that deflate shrinks but does not erase


def _members() -> list[Member]:
    return [
        *standard_members("demo", "1.0"),
        Member("demo/big.bin", BIG),
        Member("demo/empty.txt", b""),
        Member("demo/tool.sh", b"#!/bin/sh\necho hi\n", mode=stat.S_IFREG | 0o755),
        Member("demo-1.0.data/data/share/demo.txt", b"shared\n"),
        Member("demo-1.0.data/scripts/demo-run", b"#!python\nprint(1)\n"),
    ]


def _grow(source: bytes, partial: Path, final: Path, pieces: int = 7) -> threading.Thread:
    """Write ``source`` into ``partial`` in pieces, as a download does, then rename it."""

    def write() -> None:
        step = -(-len(source) // pieces)
        with partial.open("wb") as out:
            for start in range(0, len(source), step):
                out.write(source[start : start + step])
                out.flush()
                time.sleep(0.02)
        partial.rename(final)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def _expected(tmp: Path, archive: Path) -> dict[str, tuple[bytes, int]]:
    """What the store would take from Prestager for each member, by the path it unpacks to."""
    out: dict[str, tuple[bytes, int]] = {}
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            data = zf.read(info)
            out[str(tmp / info.filename)] = (hashlib.sha256(data).digest(), len(data))
    return out


def _prestager(tmp: Path, partial: Path, final: Path, size: int) -> Prestager:
    return Prestager(partial=partial, final=final, size=size, directory=tmp)


@pytest.mark.parametrize("streamed", [False, True], ids=["sizes-in-headers", "data-descriptors"])
def test_prestager_unpacks_a_growing_file(tmp_path: Path, streamed: bool) -> None:
    built = raw_wheel(tmp_path / "built", "demo-1.0-py3-none-any.whl", _members(),
                      dist_info="demo-1.0.dist-info")  # fmt: skip
    source = built.read_bytes()
    if streamed:
        # Written to a stream that cannot seek, zipfile puts each size after the data.
        buffer = io.BytesIO()

        class Unseekable(io.RawIOBase):
            def writable(self) -> bool:
                return True

            def write(self, data: bytes) -> int:  # type: ignore[override]
                return buffer.write(data)

        with zipfile.ZipFile(built) as src, zipfile.ZipFile(Unseekable(), "w") as out:
            for info in src.infolist():
                out.writestr(info, src.read(info), compress_type=info.compress_type)
        source = buffer.getvalue()
        assert source[6] & 0x8, "the test archive should use data descriptors"
    staging = tmp_path / "staging"
    staging.mkdir()
    partial, final = tmp_path / "w.whl.part", tmp_path / "w.whl"
    prestager = _prestager(staging, partial, final, len(source)).start()
    time.sleep(0.05)  # the prestager waits for the download to begin
    _grow(source, partial, final).join()
    prestager.finish()
    assert prestager.reason == "complete"
    final.write_bytes(source)
    expected = _expected(staging, final)
    assert {p: (f.sha256, f.size) for p, f in prestager.files.items()} == expected
    for path, (digest, size) in expected.items():
        data = Path(path).read_bytes()
        assert (hashlib.sha256(data).digest(), len(data)) == (digest, size)
    # Every member at its archive path, nothing outside the directory.
    written = {str(p) for p in staging.rglob("*") if p.is_file()}
    assert written == set(expected)


def test_prestager_stops_at_what_it_does_not_handle(tmp_path: Path) -> None:
    built = raw_wheel(tmp_path / "built", "demo-1.0-py3-none-any.whl", _members(),
                      dist_info="demo-1.0.dist-info")  # fmt: skip
    data = bytearray(built.read_bytes())
    data[8] = 14  # the first member's method: LZMA, which it leaves to staging
    staging = tmp_path / "staging"
    staging.mkdir()
    final = tmp_path / "w.whl"
    final.write_bytes(data)
    prestager = _prestager(staging, tmp_path / "none.part", final, len(data)).start()
    prestager.finish()
    assert prestager.reason == "compression method 14"
    assert prestager.files == {}


def test_prestager_gives_up_on_a_download_that_never_starts(tmp_path: Path) -> None:
    prestager = _prestager(tmp_path, tmp_path / "a.part", tmp_path / "a.whl", 100).start()
    prestager.finish()
    assert prestager.reason == "the download never started here"
    assert list(tmp_path.iterdir()) == []


def _install_prestaged(
    tmp_path: Path, wheel: Path, target: TargetInterpreter, *, prestage_from: Path | None = None
) -> list[str]:
    data = wheel.read_bytes()
    spec = WheelToInstall(
        path=wheel, filename=wheel.name, name=NormalizedName("demo"), version="1.0",
        sha256=hashlib.sha256(data).hexdigest(), size=len(data), requested=True,
    )  # fmt: skip
    with StagedInstall(target, compile=False) as install:
        install.prestage(
            filename=wheel.name, name="demo", size=len(data),
            partial=tmp_path / "absent.part", final=prestage_from or wheel,
        )  # fmt: skip
        install.add(spec)
        report = install.commit()
    return [p.action for p in report.projects]


def test_prestaged_install_matches_a_plain_one(tmp_path: Path) -> None:
    wheel = raw_wheel(tmp_path / "dest", "demo-1.0-py3-none-any.whl", _members(),
                      dist_info="demo-1.0.dist-info")  # fmt: skip
    plain = TargetInterpreter.query(new_venv(tmp_path / "plain"))
    with StagedInstall(plain, compile=False) as install:
        data = wheel.read_bytes()
        install.add(WheelToInstall(
            path=wheel, filename=wheel.name, name=NormalizedName("demo"), version="1.0",
            sha256=hashlib.sha256(data).hexdigest(), size=len(data), requested=True,
        ))  # fmt: skip
        install.commit()
    fast = TargetInterpreter.query(new_venv(tmp_path / "fast"))
    assert _install_prestaged(tmp_path, wheel, fast) == ["installed"]

    # The same files, bytes and modes in site-packages (RECORD aside: it hashes the scripts,
    # whose shebangs name each environment's own interpreter).
    def installed(target: TargetInterpreter) -> dict[str, tuple[str, int]]:
        state = snapshot(Path(target.paths["purelib"]))
        return {k: v for k, v in state.items() if not k.endswith("RECORD")}

    assert installed(fast) == installed(plain)
    assert (Path(fast.paths["scripts"]) / "demo-run").read_bytes().startswith(b"#!")
    site = Path(fast.paths["purelib"])
    assert (site / "demo" / "big.bin").read_bytes() == BIG
    assert (site / "demo" / "tool.sh").stat().st_mode & 0o111


def test_prestaged_bytes_the_archive_does_not_vouch_for_are_not_installed(
    tmp_path: Path,
) -> None:
    # The verified wheel's central directory and RECORD say demo/aaa.py; the bytes prestaged
    # came from a file whose local headers say demo/bbb.py and hold other content for
    # demo/big.bin (a partial the executor later started over, or a lying archive).
    members = [*_members(), Member("demo/aaa.py", b"GOOD = 1\n")]
    wheel = raw_wheel(tmp_path / "dest", "demo-1.0-py3-none-any.whl", members,
                      dist_info="demo-1.0.dist-info")  # fmt: skip
    lying = bytearray(wheel.read_bytes())
    at = lying.index(b"demo/aaa.py")  # the first occurrence: the local header
    lying[at : at + len(b"demo/aaa.py")] = b"demo/bbb.py"
    other = [Member(m.name, b"\0" * len(m.data) if m.name == "demo/big.bin" else m.data)
             for m in members]  # fmt: skip
    swapped = raw_wheel(tmp_path / "other", "demo-1.0-py3-none-any.whl", other,
                        dist_info="demo-1.0.dist-info").read_bytes()  # fmt: skip
    seen = tmp_path / "seen"
    seen.mkdir()
    liar = seen / "liar.whl"
    liar.write_bytes(bytes(lying))
    target = TargetInterpreter.query(new_venv(tmp_path / "venv"))
    assert _install_prestaged(tmp_path, wheel, target, prestage_from=liar) == ["installed"]
    site = Path(target.paths["purelib"])
    assert (site / "demo" / "aaa.py").read_bytes() == b"GOOD = 1\n"
    assert not (site / "demo" / "bbb.py").exists()

    (seen / "swapped.whl").write_bytes(swapped)
    again = TargetInterpreter.query(new_venv(tmp_path / "venv2"))
    assert _install_prestaged(tmp_path, wheel, again, prestage_from=seen / "swapped.whl") == [
        "installed"
    ]
    assert (Path(again.paths["purelib"]) / "demo" / "big.bin").read_bytes() == BIG
    assert not any(p.name.startswith(".fetchplan-staging") for p in (tmp_path / "venv2").iterdir())


def test_run_prestages_large_wheels_and_installs_the_same(
    nginx_server: MakeNginxServer, tmp_path: Path, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    graph = [
        Dist("app", "1.0", requires=["core>=3"], console_scripts={"app": "app:main"}),
        Dist("core", "3.0", padding=3_000_000),
    ]
    server = nginx_server(graph)
    argv = [
        "-vv", "--log", "run.log", "run", "app", "--index-url", server.index_url,
        "--venv", "venv", "-o", "plan.json", "--progress", "none",
    ]  # fmt: skip
    done = run_cli(*argv, env={**cli_env, "FETCHPLAN_PRESTAGE_MIN_BYTES": "1"})
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "run.log").read_text()
    assert "core-3.0-py3-none-any.whl: " in log and "members taken as prestaged" in log
    taken = [line for line in log.splitlines() if "members taken as prestaged" in line]
    assert all(" 0 members taken" not in line for line in taken), taken
    python = tmp_path / "venv" / "bin" / "python"
    check = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "check"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    out = subprocess.run([str(tmp_path / "venv" / "bin" / "app")], capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == "app 1.0"
    assert not any(p.name.startswith(".fetchplan-staging") for p in (tmp_path / "venv").iterdir())

    # Again: everything is installed at the planned versions, so nothing is unpacked.
    again = run_cli(*argv, env={**cli_env, "FETCHPLAN_PRESTAGE_MIN_BYTES": "1"})
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1].startswith("Audited 2 packages in ")
    later = (tmp_path / "run.log").read_text()[len(log) :]
    assert "prestaged" not in later, later

    # Into a new environment: the wheels are in the store, so nothing is unpacked either.
    seen = len((tmp_path / "run.log").read_text())
    fresh = [*argv[: argv.index("--venv")], "--venv", "venv2", *argv[argv.index("--venv") + 2 :]]
    third = run_cli(*fresh, env={**cli_env, "FETCHPLAN_PRESTAGE_MIN_BYTES": "1"})
    assert third.returncode == 0, third.stderr
    assert "Installed 2 packages in " in third.stdout
    last = (tmp_path / "run.log").read_text()[seen:]
    assert "prestaged" not in last and "stored " not in last, last
    core = next((tmp_path / "venv2" / "lib").glob("python*/site-packages/core/data.bin"))
    first = next((tmp_path / "venv" / "lib").glob("python*/site-packages/core/data.bin"))
    assert core.stat().st_ino == first.stat().st_ino  # linked from the same store entry
