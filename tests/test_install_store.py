"""The wheel store: filled once, linked into every environment, verified, shared by processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fetchplan.install import TargetInterpreter, install_manifest, wheels_for_interpreter
from fetchplan.install.link import LinkMode
from fetchplan.install.store import WheelStore
from tests.conftest import REPO_ROOT, RunCli
from tests.support.hostile import make_fetched_dest, new_venv
from tests.support.processes import Processes
from tests.support.wheels import Dist


def _demo() -> Dist:
    return Dist(
        "demo-app",
        "1.0",
        requires=["helper>=1.0"],
        console_scripts={"demo-app": "demo_app:main"},
    )


def _pip_check(python: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check",
         "check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _imports(target: TargetInterpreter) -> list[str]:
    out = subprocess.run(
        [target.executable, "-c",
         "import demo_app, helper; print(demo_app.__version__, helper.__version__)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.split()


def _module(target: TargetInterpreter) -> Path:
    return Path(target.paths["purelib"]) / "demo_app" / "__init__.py"


def _stored_module(store: WheelStore) -> Path:
    (match,) = store.root.glob("v1/*/*/files/demo_app/__init__.py")
    return match


class _ZipCount:
    """Counts the zip archives opened while installing (by patching zipfile.ZipFile)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened: list[str] = []
        real = zipfile.ZipFile
        count = self

        class Counting(real):  # type: ignore[misc, valid-type]
            def __init__(self, file: Any, *args: Any, **kw: Any) -> None:
                count.opened.append(str(getattr(file, "name", file)))
                super().__init__(file, *args, **kw)

        monkeypatch.setattr(zipfile, "ZipFile", Counting)


def test_second_install_links_the_stored_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = make_fetched_dest(tmp_path, [_demo(), Dist("helper", "1.5")])
    store = WheelStore(tmp_path / "cache" / "store")
    first = TargetInterpreter.query(new_venv(tmp_path / "one"))
    report = install_manifest(manifest, first, store=store, link_mode="hardlink")
    assert [p.action for p in report.projects] == ["installed", "installed"]
    assert set(report.placed) == {"hardlink"}

    zips = _ZipCount(monkeypatch)
    second = TargetInterpreter.query(new_venv(tmp_path / "two"))
    again = install_manifest(manifest, second, store=store, link_mode="hardlink")
    assert [p.action for p in again.projects] == ["installed", "installed"]
    assert zips.opened == []  # nothing unzipped: the files came from the store
    assert again.placed == report.placed

    stored = _stored_module(store).stat()
    for target in (first, second):
        st = _module(target).stat()
        assert (st.st_dev, st.st_ino) == (stored.st_dev, stored.st_ino)
        assert _imports(target) == ["1.0", "1.5"]
        _pip_check(Path(target.executable))
        # What belongs to each environment is its own file, never the store's.
        dist_info = Path(target.paths["purelib"]) / "demo_app-1.0.dist-info"
        for own in ("RECORD", "INSTALLER", "REQUESTED"):
            assert (dist_info / own).stat().st_nlink == 1, own
        script = Path(target.paths["scripts"]) / "demo-app"
        assert script.stat().st_nlink == 1
        assert script.read_text().splitlines()[0] == f"#!{target.executable}"
        # Bytecode went into the environment's own __pycache__.
        pyc = _module(target).parent / "__pycache__" / f"__init__.{target.cache_tag}.pyc"
        assert pyc.is_file() and pyc.stat().st_nlink == 1
    assert stored.st_nlink == 3
    assert not list(store.root.rglob("__pycache__"))
    entries = [store.get(key) for key in store.digests()]
    assert store.verify() == (2, sum(len(e.files) for e in entries if e is not None), [])


@pytest.mark.parametrize("mode", ["auto", "clone", "hardlink", "copy", "symlink"])
def test_each_link_mode_installs(tmp_path: Path, mode: LinkMode) -> None:
    manifest = make_fetched_dest(tmp_path, [_demo(), Dist("helper", "1.5")])
    store = WheelStore(tmp_path / "cache" / "store")
    target = TargetInterpreter.query(new_venv(tmp_path / "venv"))
    report = install_manifest(manifest, target, store=store, link_mode=mode)
    assert _imports(target) == ["1.0", "1.5"]
    _pip_check(Path(target.executable))
    installed, stored = _module(target), _stored_module(store)
    same_file = installed.stat().st_ino == stored.stat().st_ino
    if mode == "symlink":
        assert set(report.placed) == {"symlink"}
        assert installed.is_symlink() and installed.resolve() == stored.resolve()
        return
    assert not installed.is_symlink()
    if mode == "hardlink":
        assert set(report.placed) == {"hardlink"} and same_file
    elif mode == "copy":
        assert set(report.placed) == {"copy"} and not same_file
    elif mode == "clone":
        # A clone where the file system copies on write, else a copy: never the same file.
        assert set(report.placed) in ({"clone"}, {"copy"}) and not same_file
    else:
        # On one file system: a clone where it copies on write, else a hard link.
        assert set(report.placed) in ({"clone"}, {"hardlink"})
        assert same_file == (set(report.placed) == {"hardlink"})
    assert installed.read_bytes() == stored.read_bytes()


@pytest.fixture
def other_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A directory on another file system than ``tmp_path`` (a tmpfs)."""
    where = Path(tempfile.mkdtemp(prefix="fetchplan-test-", dir="/dev/shm"))
    try:
        assert where.stat().st_dev != tmp_path.stat().st_dev, "need two file systems"
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


@pytest.mark.parametrize("mode", ["auto", "hardlink"])
def test_copy_is_used_across_file_systems(
    tmp_path: Path, other_filesystem: Path, mode: LinkMode
) -> None:
    manifest = make_fetched_dest(tmp_path, [_demo(), Dist("helper", "1.5")])
    store = WheelStore(other_filesystem / "store")
    target = TargetInterpreter.query(new_venv(tmp_path / "venv"))
    report = install_manifest(manifest, target, store=store, link_mode=mode)
    assert set(report.placed) == {"copy"}  # every link failed (EXDEV) and fell back
    installed, stored = _module(target), _stored_module(store)
    assert installed.stat().st_dev != stored.stat().st_dev
    assert installed.stat().st_nlink == 1 and stored.stat().st_nlink == 1
    assert installed.read_bytes() == stored.read_bytes()
    assert _imports(target) == ["1.0", "1.5"]
    _pip_check(Path(target.executable))


def test_cache_verify_evicts_a_changed_entry(tmp_path: Path, run_cli: RunCli) -> None:
    manifest = make_fetched_dest(tmp_path, [_demo(), Dist("helper", "1.5")])
    install: list[str | Path] = [
        "install",
        manifest,
        "--cache-dir",
        "cache",
        "--link-mode",
        "hardlink",
    ]
    done = run_cli(*install, "--venv", "one")
    assert done.returncode == 0, done.stderr
    verified = run_cli("cache", "verify", "--cache-dir", "cache")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verified 2 wheels" in verified.stdout and "0 evicted" in verified.stdout

    # Edited in the environment: the hard link edits the store.
    installed = tmp_path / "one" / "lib"
    (module,) = installed.glob("python*/site-packages/demo_app/__init__.py")
    module.write_text(module.read_text().replace('"1.0"', '"9.9"'))
    store = WheelStore(tmp_path / "cache" / "store")
    (demo,) = [wheel for wheel in wheels_for_interpreter(manifest, _target(tmp_path / "one"))
               if wheel.name == "demo-app"]  # fmt: skip
    assert store.get(demo.sha256) is not None

    found = run_cli("cache", "verify", "--cache-dir", "cache")
    assert found.returncode == 1
    (line,) = [x for x in found.stdout.splitlines() if x.startswith("evicted")]
    assert demo.filename in line and "demo_app/__init__.py" in line and "changed" in line
    assert "1 evicted" in found.stdout
    assert store.get(demo.sha256) is None
    assert run_cli("cache", "verify", "--cache-dir", "cache").returncode == 0

    # The next install unpacks the verified wheel again: the original bytes.
    done = run_cli(*install, "--venv", "two")
    assert done.returncode == 0, done.stderr
    (fresh,) = (tmp_path / "two" / "lib").glob("python*/site-packages/demo_app/__init__.py")
    assert '"1.0"' in fresh.read_text()
    assert store.get(demo.sha256) is not None


def _target(venv: Path) -> TargetInterpreter:
    return TargetInterpreter.query(venv / "bin" / "python")


_FILL = r"""
import json, logging, sys, time
from pathlib import Path
logging.basicConfig(level=logging.DEBUG)
from fetchplan.install.selection import WheelToInstall
from fetchplan.install.store import WheelStore
from fetchplan.install.wheel import open_wheel

spec = WheelToInstall(**{**json.loads(sys.argv[1]), "path": Path(json.loads(sys.argv[1])["path"])})
go = Path(sys.argv[3])
print("waiting", flush=True)
while not go.exists():
    time.sleep(0.001)
opened = open_wheel(spec)
try:
    entry = WheelStore(Path(sys.argv[2])).fill(opened)
finally:
    opened.close()
print(entry.directory, len(entry.files))
"""


def test_two_processes_fill_the_same_entry_at_once(tmp_path: Path, processes: Processes) -> None:
    files = {f"many/m{i:04d}.py": f"VALUE = {i}\n".encode() * 40 for i in range(600)}
    files["many/__init__.py"] = b""
    manifest = make_fetched_dest(tmp_path, [Dist("many", "1.0", files=files)])
    (spec,) = wheels_for_interpreter(manifest, _target_of(tmp_path))
    described = json.dumps({
        "path": str(spec.path), "filename": spec.filename, "name": spec.name,
        "version": spec.version, "sha256": spec.sha256, "size": spec.size,
    })  # fmt: skip
    root, go = tmp_path / "store", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    argv = [sys.executable, "-c", _FILL, described, str(root), str(go)]
    started = [processes.start(argv, env=env) for _ in range(2)]
    for process in started:  # both started and waiting
        assert process.stdout is not None
        assert process.stdout.readline() == "waiting\n"
    go.touch()
    results = [p.communicate(timeout=120) for p in started]
    for process, (_, err) in zip(started, results, strict=True):
        assert process.returncode == 0, err
    store = WheelStore(root)
    assert list(store.digests()) == [spec.sha256]
    directories = {out.split()[0] for out, _ in results}
    assert directories == {str(store.entry_dir(spec.sha256))}
    assert {out.split()[1] for out, _ in results} == {str(len(files) + 2)}  # METADATA, WHEEL
    # One process renamed its entry into place; the other took that one.
    assert sum("stored many-1.0" in err for _, err in results) == 1
    assert list((root / "tmp").iterdir()) == []
    assert store.verify()[2] == []


def _target_of(tmp_path: Path) -> TargetInterpreter:
    return TargetInterpreter.query(new_venv(tmp_path / "venv"))


def test_what_killed_fills_left_a_day_ago_is_swept(tmp_path: Path) -> None:
    store = WheelStore(tmp_path / "store")
    old, recent = store.new_temp(), store.new_temp()
    (old / "files").mkdir()
    (old / "files" / "half.py").write_bytes(b"x")
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    fresh = WheelStore(tmp_path / "store").new_temp()  # another process, later
    assert not old.exists()
    assert recent.is_dir() and fresh.is_dir()


def test_prune_removes_stale_fills_and_unreadable_entries(tmp_path: Path) -> None:
    manifest = make_fetched_dest(tmp_path, [_demo(), Dist("helper", "1.5")])
    store = WheelStore(tmp_path / "cache" / "store")
    target = TargetInterpreter.query(new_venv(tmp_path / "venv"))
    install_manifest(manifest, target, store=store)
    keys = list(store.digests())
    stale = store.new_temp()
    (stale / "left.py").write_bytes(b"12345")
    day_ago = time.time() - 25 * 3600
    os.utime(stale, (day_ago, day_ago))
    live = store.new_temp()
    (store.entry_dir(keys[0]) / "entry.json").write_text("{")  # a crash left it short
    files, size = store.prune()
    assert not stale.exists() and live.is_dir()
    assert list(store.digests()) == keys[1:]
    assert files > 1 and size > 5
    assert store.prune() == (0, 0)


def test_an_unreadable_entry_is_replaced_when_its_wheel_is_installed(tmp_path: Path) -> None:
    manifest = make_fetched_dest(tmp_path, [_demo(), Dist("helper", "1.5")])
    store = WheelStore(tmp_path / "cache" / "store")
    install_manifest(manifest, TargetInterpreter.query(new_venv(tmp_path / "one")), store=store)
    for key in store.digests():
        (store.entry_dir(key) / "entry.json").write_text("{")
    target = TargetInterpreter.query(new_venv(tmp_path / "two"))
    report = install_manifest(manifest, target, store=store)
    assert [p.action for p in report.projects] == ["installed", "installed"]
    assert _imports(target) == ["1.0", "1.5"]
    assert all(store.get(key) is not None for key in store.digests())


def test_a_named_link_mode_that_falls_back_says_so(
    tmp_path: Path, other_filesystem: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = make_fetched_dest(tmp_path, [Dist("helper", "1.5")])
    target = TargetInterpreter.query(new_venv(tmp_path / "venv"))
    with caplog.at_level("WARNING", logger="fetchplan.install.link"):
        report = install_manifest(
            manifest, target, store=WheelStore(other_filesystem / "s"), link_mode="hardlink"
        )
    assert set(report.placed) == {"copy"}
    (record,) = [r for r in caplog.records if r.name == "fetchplan.install.link"]
    assert "cannot hardlink" in record.getMessage() and "using copy" in record.getMessage()


def test_cache_prune_keeps_store_files_of_any_name(tmp_path: Path, run_cli: RunCli) -> None:
    files = {"dotted/__init__.py": b"", "dotted/.settings": b"kept = 1\n"}
    manifest = make_fetched_dest(tmp_path, [Dist("dotted", "1.0", files=files)])
    done = run_cli("install", manifest, "--venv", "venv", "--cache-dir", "cache")
    assert done.returncode == 0, done.stderr
    store = WheelStore(tmp_path / "cache" / "store")
    (stored,) = store.root.glob("v1/*/*/files/dotted/.settings")
    day_ago = time.time() - 25 * 3600
    os.utime(stored, (day_ago, day_ago))
    stale = store.new_temp()
    os.utime(stale, (day_ago, day_ago))
    pruned = run_cli("cache", "prune", "--cache-dir", "cache")
    assert pruned.returncode == 0, pruned.stderr
    assert stored.is_file() and not stale.exists()
    verified = run_cli("cache", "verify", "--cache-dir", "cache")
    assert verified.returncode == 0 and "0 evicted" in verified.stdout, verified.stdout


def test_prune_unused_days_removes_entries_no_install_took_for_that_long(
    tmp_path: Path, run_cli: RunCli
) -> None:
    manifest = make_fetched_dest(tmp_path, [_demo(), Dist("helper", "1.5")])
    done = run_cli("install", manifest, "--venv", "one", "--cache-dir", "cache")
    assert done.returncode == 0, done.stderr
    store = WheelStore(tmp_path / "cache" / "store")
    keys = list(store.digests())
    assert len(keys) == 2
    month_ago = time.time() - 30 * 86400
    for key in keys:
        os.utime(store.entry_dir(key) / "entry.json", (month_ago, month_ago))
    # Installing into another environment takes both from the store: both are used again.
    again = run_cli("install", manifest, "--venv", "two", "--cache-dir", "cache")
    assert again.returncode == 0, again.stderr
    kept = run_cli("cache", "prune", "--unused-days", "7", "--cache-dir", "cache")
    assert kept.returncode == 0, kept.stderr
    assert list(store.digests()) == keys
    # Verifying is not using: an entry left a month unused goes, the other stays.
    os.utime(store.entry_dir(keys[0]) / "entry.json", (month_ago, month_ago))
    assert run_cli("cache", "verify", "--cache-dir", "cache").returncode == 0
    pruned = run_cli("cache", "prune", "--unused-days", "7", "--cache-dir", "cache")
    assert pruned.returncode == 0, pruned.stderr
    assert list(store.digests()) == keys[1:]
    assert "pruned 0 files" not in pruned.stdout
    # Without --unused-days nothing whole is removed however old.
    os.utime(store.entry_dir(keys[1]) / "entry.json", (month_ago, month_ago))
    assert run_cli("cache", "prune", "--cache-dir", "cache").returncode == 0
    assert list(store.digests()) == keys[1:]
    third = run_cli("install", manifest, "--venv", "three", "--cache-dir", "cache")
    assert third.returncode == 0, third.stderr
    assert len(list(store.digests())) == 2


@pytest.mark.parametrize(
    ("position", "value"),
    [(0, ""), (1, "lib"), (1, 7), (2, True), (3, ""), (4, -1), (4, "12"), (4, True), (5, 1)],
)
def test_an_entry_row_of_the_wrong_types_is_a_miss(
    tmp_path: Path, position: int, value: object
) -> None:
    """Rows the schema lets through (six strings, integers or booleans) but that are no
    file row make the entry unreadable: it is not used."""
    manifest = make_fetched_dest(tmp_path, [_demo()])
    store = WheelStore(tmp_path / "cache" / "store")
    install_manifest(manifest, TargetInterpreter.query(new_venv(tmp_path / "one")), store=store)
    (key,) = store.digests()
    path = store.entry_dir(key) / "entry.json"
    document = json.loads(path.read_text())
    assert store.get(key) is not None
    document["files"][-1][position] = value
    path.write_text(json.dumps(document))
    assert store.get(key) is None
