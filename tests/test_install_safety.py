"""Install never runs or plants code it was not asked to.

A wheel may not replace the environment's interpreters, launchers or own files, and nothing
fetchplan starts in the target environment (its description, byte-compiling) runs a ``.pth``
file or ``sitecustomize`` of that environment.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fetchplan.install import TargetInterpreter, UnsafeWheel, install_manifest
from tests.conftest import MakeNginxServer, RunCli
from tests.support.hostile import Member, make_fetched_dest, new_venv, raw_wheel, snapshot
from tests.support.hostile import standard_members as _standard
from tests.support.wheels import Dist

FILENAME = "evil-1.0-py3-none-any.whl"
DIST_INFO = "evil-1.0.dist-info"
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
SCRIPT = b"#!/bin/sh\necho planted\n"


def _wheel(directory: Path, *extra: Member) -> Path:
    members = [*_standard("evil", "1.0"), *extra]
    return raw_wheel(directory, FILENAME, members, dist_info=DIST_INFO)


def _script(name: str) -> Member:
    return Member(f"evil-1.0.data/scripts/{name}", SCRIPT, mode=stat.S_IFREG | 0o755)


def _entry_points(text: str) -> Member:
    return Member(f"{DIST_INFO}/entry_points.txt", text.encode())


# Each member is written where the environment keeps its own files: refused, naming it.
PLANTED: dict[str, tuple[Member, str]] = {
    "script-python": (_script("python"), "'evil-1.0.data/scripts/python'"),
    "script-python3": (_script("python3"), "'evil-1.0.data/scripts/python3'"),
    "script-python3.x": (_script(f"python{VERSION}"), f"scripts/python{VERSION}'"),
    "script-pythonw.exe": (_script("pythonw.exe"), "'evil-1.0.data/scripts/pythonw.exe'"),
    "script-pypy3": (_script("pypy3.10"), "'evil-1.0.data/scripts/pypy3.10'"),
    "script-upper-case": (_script("Python3"), "'evil-1.0.data/scripts/Python3'"),
    "script-activate": (_script("activate"), "'evil-1.0.data/scripts/activate'"),
    "script-activate.fish": (_script("activate.fish"), "scripts/activate.fish'"),
    "script-Activate.ps1": (_script("Activate.ps1"), "scripts/Activate.ps1'"),
    "data-bin-python": (
        Member("evil-1.0.data/data/bin/python", SCRIPT, mode=stat.S_IFREG | 0o755),
        "'evil-1.0.data/data/bin/python'",
    ),
    "data-pyvenv.cfg": (
        Member("evil-1.0.data/data/pyvenv.cfg", b"home = /tmp\n"),
        "'evil-1.0.data/data/pyvenv.cfg'",
    ),
    "data-fetchplan-state": (
        Member("evil-1.0.data/data/.fetchplan/journal.json", b"{}"),
        "'evil-1.0.data/data/.fetchplan/journal.json'",
    ),
    "data-fetchplan-staging": (
        Member("evil-1.0.data/data/.fetchplan-staging-x/a", b"x"),
        "'evil-1.0.data/data/.fetchplan-staging-x/a'",
    ),
    "console-entry-point": (
        _entry_points("[console_scripts]\npython3 = evil:main\n"),
        "[console_scripts] 'python3'",
    ),
    "gui-entry-point": (
        _entry_points("[gui_scripts]\npythonw = evil:main\n"),
        "[gui_scripts] 'pythonw'",
    ),
    "entry-point-versioned": (
        _entry_points(f"[console_scripts]\npython{VERSION} = evil:main\n"),
        f"'python{VERSION}'",
    ),
}


@pytest.fixture(scope="module")
def shared_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TargetInterpreter]:
    # Read-only for every test here: each asserts the environment stays as it was.
    yield TargetInterpreter.query(new_venv(tmp_path_factory.mktemp("planted") / "venv"))


@pytest.mark.parametrize("case", list(PLANTED))
def test_wheel_replacing_the_environments_own_files_is_refused(
    case: str, tmp_path: Path, shared_venv: TargetInterpreter
) -> None:
    member, where = PLANTED[case]
    manifest = make_fetched_dest(tmp_path, [_wheel(tmp_path / "dest", member)])
    before = snapshot(Path(shared_venv.prefix))
    with pytest.raises(UnsafeWheel) as info:
        install_manifest(manifest, shared_venv)
    message = str(info.value)
    assert message.startswith(f"{FILENAME}: "), message
    assert where in message and "would replace the environment's own" in message, message
    assert "\n" not in message
    assert snapshot(Path(shared_venv.prefix)) == before


def test_ordinary_scripts_near_those_names_install(
    tmp_path: Path, shared_venv: TargetInterpreter
) -> None:
    # Only the environment's own names are refused, not names that merely resemble them.
    venv = TargetInterpreter.query(new_venv(tmp_path / "venv"))
    wheel = _wheel(
        tmp_path / "dest",
        _script("python-lint"),
        _script("activate-tool"),
        _entry_points("[console_scripts]\npythonic = evil:main\n"),
    )
    install_manifest(make_fetched_dest(tmp_path, [wheel]), venv)
    scripts = Path(venv.paths["scripts"])
    assert {"python-lint", "activate-tool", "pythonic"} <= {p.name for p in scripts.iterdir()}


def test_cli_refuses_a_wheel_shipping_bin_python(tmp_path: Path, run_cli: RunCli) -> None:
    manifest = make_fetched_dest(tmp_path, [_wheel(tmp_path / "dest", _script("python"))])
    python = new_venv(tmp_path / "venv")
    before = snapshot(tmp_path / "venv")
    done = run_cli("install", manifest, "--venv", tmp_path / "venv")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert FILENAME in lines[0] and "'evil-1.0.data/scripts/python'" in lines[0], lines
    assert "Traceback" not in done.stderr
    assert snapshot(tmp_path / "venv") == before
    assert subprocess.run([python, "-c", "pass"], check=False).returncode == 0


def _pth_dist(marker: Path, name: str = "pthdemo", version: str = "1.0") -> Dist:
    # A .pth line starting with "import" is executed by site at every interpreter start.
    line = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('ran')\n"
    module = name.replace("-", "_")
    return Dist(
        name,
        version,
        files={
            f"{module}/__init__.py": f'__version__ = "{version}"\n'.encode(),
            f"{module}_hook.pth": line.encode(),
            "sitecustomize.py": line.encode(),
        },
    )


def test_install_runs_no_pth_file_of_the_environment(tmp_path: Path, run_cli: RunCli) -> None:
    marker = tmp_path / "marker"
    manifest = make_fetched_dest(tmp_path, [_pth_dist(marker)])
    venv = tmp_path / "venv"
    done = run_cli("install", manifest, "--venv", venv)
    assert done.returncode == 0, done.stderr
    site = Path(TargetInterpreter.query(venv / "bin" / "python").paths["purelib"])
    assert (site / "pthdemo_hook.pth").is_file()
    assert list((site / "pthdemo" / "__pycache__").glob("__init__.*.pyc"))
    # Again, now that the .pth file is there for the interpreter's description and for
    # byte-compiling to run.
    done = run_cli("install", manifest, "--venv", venv, "--reinstall")
    assert done.returncode == 0, done.stderr
    assert not marker.exists()
    # The hook is live: the environment's interpreter, started as usual, runs it.
    subprocess.run([venv / "bin" / "python", "-c", "pass"], check=True)
    assert marker.read_text() == "ran"


def test_run_runs_no_pth_file_of_the_environment(
    nginx_server: MakeNginxServer, tmp_path: Path, run_cli: RunCli
) -> None:
    marker = tmp_path / "marker"
    server = nginx_server([_pth_dist(marker)])
    argv = ["run", "pthdemo", "--index-url", server.index_url, "--venv", "venv", "-q"]
    done = run_cli(*argv)
    assert done.returncode == 0, done.stderr
    done = run_cli(*argv, "--reinstall")
    assert done.returncode == 0, done.stderr
    assert not marker.exists()
    subprocess.run([tmp_path / "venv" / "bin" / "python", "-c", "pass"], check=True)
    assert marker.read_text() == "ran"


def test_a_venv_made_by_the_target_runs_no_pth_file_of_it(tmp_path: Path) -> None:
    # Building an sdist, the target interpreter makes the build environment.
    from fetchplan.install import ensure_venv

    marker = tmp_path / "marker"
    target = TargetInterpreter.query(new_venv(tmp_path / "venv"))
    install_manifest(make_fetched_dest(tmp_path, [_pth_dist(marker)]), target)
    made = ensure_venv(tmp_path / "build-env", python=Path(target.executable))
    assert not marker.exists()
    built = TargetInterpreter.query(made)
    assert built.prefix == str(tmp_path / "build-env") and built.in_venv
    subprocess.run([made, "-c", "import sys; assert sys.prefix != sys.base_prefix"], check=True)
    assert not marker.exists()  # the new environment does not have the hook
    subprocess.run([target.executable, "-c", "pass"], check=True)
    assert marker.read_text() == "ran"


def test_staged_files_are_checked_too_however_staging_came_by_them(
    tmp_path: Path, shared_venv: TargetInterpreter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the check of the opened wheel out of the way, the staged files' own check refuses
    # the wheel: a script staged to bin/python never moves in.
    from fetchplan.install import core

    monkeypatch.setattr(core, "check_wheel", lambda *args: None)
    manifest = make_fetched_dest(tmp_path, [_wheel(tmp_path / "dest", _script("python3"))])
    before = snapshot(Path(shared_venv.prefix))
    with pytest.raises(UnsafeWheel) as info:
        install_manifest(manifest, shared_venv)
    scripts = shared_venv.paths["scripts"]
    assert str(info.value) == (f"{FILENAME}: would replace the environment's own {scripts}/python3")
    assert snapshot(Path(shared_venv.prefix)) == before
