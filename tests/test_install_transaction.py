"""One install at a time, and a kill never leaves half an environment.

Every test checks the README's guarantee the same way (:func:`check_environment`): each
project has exactly one version installed, every file of it matches its RECORD, no file of
another version is left among its files, it imports as that version, and no staging,
journal or set-aside copy is left.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from fetchplan._lock import hold_lock
from fetchplan.errors import FetchplanError
from fetchplan.install import TargetInterpreter, venv_python
from fetchplan.install.transaction import JOURNAL, STAGING_PREFIX, environment_lock
from tests.conftest import REPO_ROOT, MakeNginxServer, RunCli
from tests.support.hostile import assert_no_leftovers, make_fetched_dest, new_venv
from tests.support.processes import Processes
from tests.support.wheels import Dist

PROJECTS = ("alpha", "beta", "gamma", "delta")

# The install a test kills: the installer's own entry point, in a process of its own, without
# the command line's imports (a third of the CPU), so that more kills fit in the time budget
# (with "cli" first, the command line itself).
# ``FETCHPLAN_TEST_KILL_AT`` (set only by these tests) names a moment at which the process
# kills itself: "commit" (the commit marker is written) or "move:N" (the N-th move in).
DRIVER = r"""
import os, signal, sys
from pathlib import Path
from fetchplan.install import TargetInterpreter, install_manifest
from fetchplan.install import transaction

at = os.environ.get("FETCHPLAN_TEST_KILL_AT", "")
if at == "commit":
    clean_up = transaction._Journal.clean_up
    def clean_up_then_die(self, *, committed):
        if committed:
            os.kill(os.getpid(), signal.SIGKILL)
        clean_up(self, committed=committed)
    transaction._Journal.clean_up = clean_up_then_die
elif at.startswith("move:"):
    left = [int(at[5:])]
    move = transaction._move
    def move_then_die(*args, **kwargs):
        left[0] -= 1
        if left[0] < 0:
            os.kill(os.getpid(), signal.SIGKILL)
        move(*args, **kwargs)
    transaction._move = move_then_die
if sys.argv[1] == "cli":
    from fetchplan.cli import main
    sys.exit(main(sys.argv[2:]))
install_manifest(Path(sys.argv[1]), TargetInterpreter.query(Path(sys.argv[2])))
"""


def _dist(name: str, version: str, modules: int = 40) -> Dist:
    """``name`` at ``version``: modules shared by both versions (with other contents), a
    subpackage only this version has, a console script and a data file."""
    files: dict[str, bytes] = {f"{name}/__init__.py": f'__version__ = "{version}"\n'.encode()}
    for number in range(modules):
        files[f"{name}/common/m{number}.py"] = f"V = {version!r}\nN = {number}\n".encode()
        files[f"{name}/only_{version.replace('.', '_')}/m{number}.py"] = b"X = 1\n"
    files[f"{name}/common/__init__.py"] = b""
    files[f"{name}-{version}.data/data/share/{name}/notes-{version}.txt"] = version.encode()
    return Dist(name, version, files=files, console_scripts={f"{name}-tool": f"{name}:main"})


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_environment(target: TargetInterpreter, projects: Sequence[str]) -> dict[str, str]:
    """Assert the guarantee for ``projects`` in ``target``; return their versions."""
    site = Path(target.paths["purelib"])
    versions: dict[str, str] = {}
    for name in projects:
        dist_infos = sorted(site.glob(f"{name}-*.dist-info"))
        assert len(dist_infos) == 1, (name, dist_infos)
        dist_info = dist_infos[0]
        version = dist_info.name.removesuffix(".dist-info").split("-")[1]
        assert f"Version: {version}\n" in (dist_info / "METADATA").read_text()
        listed: set[Path] = set()
        for path, digest, size in csv.reader((dist_info / "RECORD").read_text().splitlines()):
            full = Path(os.path.normpath(site / path))
            listed.add(full)
            if digest:
                data = full.read_bytes()
                assert (_record_hash(data), len(data)) == (digest, int(size)), full
        package = site / name
        for found in package.rglob("*"):
            if found.is_file() and found.parent.name != "__pycache__":
                assert found in listed, f"{found}: no file of {name} {version}"
        versions[name] = version
    script = "; ".join(f"import {n}; print({n}.__version__)" for n in projects)
    done = subprocess.run(
        [target.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == [versions[n] for n in projects]
    assert_no_leftovers(Path(target.prefix))
    return versions


def _releases(root: Path, projects: Sequence[str], modules: int = 40) -> dict[str, Path]:
    """A fetched destination (its manifest) per release of ``projects``: 1.0 and 2.0."""
    return {
        version: make_fetched_dest(
            root,
            [_dist(name, version, modules) for name in projects],
            requested=set(projects),
            name=f"dest-{version}",
        )
        for version in ("1.0", "2.0")
    }


@pytest.fixture
def releases(tmp_path: Path) -> dict[str, Path]:
    return _releases(tmp_path, PROJECTS)


def _install_argv(manifest: Path, venv: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fetchplan",
        "install",
        str(manifest),
        "--venv",
        str(venv),
        *extra,
    ]


def _driver_argv(manifest: Path, venv: Path) -> list[str]:
    return [sys.executable, "-c", DRIVER, str(manifest), str(venv / "bin" / "python")]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _wait_for(path: Path, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        assert time.monotonic() < deadline, f"{path}: never said {text!r}"
        time.sleep(0.02)


def test_installs_into_one_environment_wait_for_each_other(
    tmp_path: Path, run_cli: RunCli, processes: Processes
) -> None:
    projects = PROJECTS[:2]
    releases = _releases(tmp_path, projects, modules=10)
    venv = tmp_path / "venv"
    target = TargetInterpreter.query(new_venv(venv))
    with environment_lock(target):
        busy = run_cli("install", releases["1.0"], "--venv", venv, "--no-wait")
        assert busy.returncode == 75, busy.stderr
        assert busy.stderr.count("\n") == 1, busy.stderr
        assert f"another fetchplan (pid {os.getpid()} on " in busy.stderr
        assert "is installing into it (--no-wait was given)" in busy.stderr
        # Two installs of different releases, both waiting for the lock we hold.
        logs = [tmp_path / "first.err", tmp_path / "second.err"]
        children = []
        for version, log in zip(("1.0", "2.0"), logs, strict=True):
            with log.open("w") as err:
                children.append(
                    processes.start(
                        _install_argv(releases[version], venv),
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                        env=_env(),
                    )
                )
        for log in logs:
            _wait_for(log, f"waiting for another fetchplan (pid {os.getpid()} on ")
        assert [child.poll() for child in children] == [None, None]
    assert [child.wait(timeout=120) for child in children] == [0, 0]
    versions = check_environment(target, projects)
    assert set(versions.values()) in ({"1.0"}, {"2.0"})
    # Unsynchronised: two installs of different releases started together.
    for _ in range(1):
        racing = [
            processes.start(
                _install_argv(releases[version], venv), stdout=subprocess.DEVNULL, env=_env()
            )
            for version in ("2.0", "1.0")
        ]
        outcomes = [(child.communicate(timeout=120)[1], child.returncode) for child in racing]
        assert [code for _err, code in outcomes] == [0, 0], outcomes
        versions = check_environment(target, projects)
        assert set(versions.values()) in ({"1.0"}, {"2.0"})


# Two command lines started at one moment: each waits for the given wall-clock time first.
AT_ONCE = r"""
import sys, time
start = float(sys.argv[1])
while time.time() < start:
    pass
from fetchplan.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_installs_creating_one_environment_at_once_make_it_once(
    tmp_path: Path, run_cli: RunCli, processes: Processes
) -> None:
    projects = PROJECTS[:2]
    releases = _releases(tmp_path, projects, modules=5)
    venv = tmp_path / "venv"
    # Whoever holds the lock of an environment still to be made: the others wait for it.
    with hold_lock(venv / ".fetchplan", wait=False, busy=FetchplanError):
        busy = run_cli("install", releases["1.0"], "--venv", venv, "--no-wait")
        assert busy.returncode == 75, busy.stderr
        assert busy.stderr.count("\n") == 1, busy.stderr
        assert "is creating or installing into it (--no-wait was given)" in busy.stderr
        log = tmp_path / "waiting.err"
        with log.open("w") as err:
            child = processes.start(
                _install_argv(releases["1.0"], venv),
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=_env(),
            )
        _wait_for(log, f"waiting for another fetchplan (pid {os.getpid()} on ")
        assert child.poll() is None
        assert not (venv / "pyvenv.cfg").exists()
    assert child.wait(timeout=120) == 0, log.read_text()
    check_environment(TargetInterpreter.query(venv_python(venv)), projects)
    # Unsynchronised: pairs started at one moment into a new environment, both making it.
    for attempt in range(3):
        venv = tmp_path / f"venv-{attempt}"
        start = time.time() + 1.0
        racing = [
            processes.start(
                [
                    sys.executable,
                    "-c",
                    AT_ONCE,
                    str(start),
                    "install",
                    str(releases[version]),
                    "--venv",
                    str(venv),
                ],
                stdout=subprocess.DEVNULL,
                env=_env(),
            )
            for version in ("1.0", "2.0")
        ]
        outcomes = [(child.communicate(timeout=120)[1], child.returncode) for child in racing]
        assert [code for _err, code in outcomes] == [0, 0], outcomes
        versions = check_environment(TargetInterpreter.query(venv_python(venv)), projects)
        assert set(versions.values()) in ({"1.0"}, {"2.0"})


def test_a_creation_killed_midway_is_made_again_by_the_next(
    tmp_path: Path, run_cli: RunCli
) -> None:
    releases = _releases(tmp_path, PROJECTS[:1], modules=2)
    venv = tmp_path / "venv"
    # What a creation killed after the venv module had written a little leaves behind.
    (venv / ".fetchplan").mkdir(parents=True)
    (venv / ".fetchplan" / "creating").touch()
    (venv / "lib").mkdir()
    (venv / "pyvenv.cfg").write_text("home = /nowhere\n")
    done = run_cli("install", releases["1.0"], "--venv", venv)
    assert done.returncode == 0, done.stderr
    check_environment(TargetInterpreter.query(venv_python(venv)), PROJECTS[:1])
    # Without the mark, what is there is someone else's: refused, untouched.
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine\n")
    refused = run_cli("install", releases["1.0"], "--venv", other)
    assert refused.returncode != 0
    assert f"{other}: exists and is not a virtual environment" in refused.stderr
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def _dist_infos(site: Path) -> set[str]:
    return {name for name in os.listdir(site) if name.endswith(".dist-info")}  # noqa: PTH208


def _staging(prefix: Path) -> bool:
    return any(name.startswith(STAGING_PREFIX) for name in os.listdir(prefix))  # noqa: PTH208


def _until(child: subprocess.Popen[str], condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds or ``child`` has exited."""
    deadline = time.monotonic() + 60
    while not condition() and child.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.0005)


def _kill_at_random(
    child: subprocess.Popen[str],
    target: TargetInterpreter,
    aim: str,
    rng: random.Random,
    span: float,
) -> None:
    """Kill ``child`` at a random moment, told from outside whatever the installer does:
    ``aim`` "while installing" is anywhere in its work on the environment (from its staging
    on: staging, the change, byte-compiling; ``span`` is how long that took undisturbed),
    "in the change" within a few milliseconds of the first change to the environment's
    distributions (the change itself is short, so half the kills aim at it)."""
    if aim == "while installing":
        _until(child, lambda: _staging(Path(target.prefix)))
        time.sleep(rng.uniform(0.0, span))
    else:
        site = Path(target.paths["purelib"])
        before = _dist_infos(site)
        delay = rng.choice([0.0, rng.uniform(0.0, 0.02)])
        _until(child, lambda: _dist_infos(site) != before)
        time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()


def _other(versions: dict[str, str]) -> str:
    return "2.0" if set(versions.values()) == {"1.0"} else "1.0"


def test_sigkill_at_random_moments_leaves_one_whole_version(
    tmp_path: Path, releases: dict[str, Path], processes: Processes
) -> None:
    venv = tmp_path / "venv"
    target = TargetInterpreter.query(new_venv(venv))
    first = processes.start(
        _driver_argv(releases["1.0"], venv), stdout=None, stderr=None, env=_env()
    )
    _until(first, lambda: _staging(venv))
    started = time.monotonic()
    assert first.wait() == 0
    span = time.monotonic() - started
    versions = check_environment(target, PROJECTS)

    rng = random.Random(18)  # a repeatable choice of kill points
    outcomes: list[tuple[str, str]] = []
    budget = time.monotonic() + 20
    while len(outcomes) < 16 and time.monotonic() < budget:
        aim = ("in the change", "while installing")[len(outcomes) % 2]
        child = processes.start(
            _driver_argv(releases[_other(versions)], venv),
            stdout=None,
            stderr=subprocess.DEVNULL,
            env=_env(),
        )
        _kill_at_random(child, target, aim, rng, span)
        # What the next command touching the environment does first, under its lock.
        with environment_lock(target) as recovered:
            pass
        versions = check_environment(target, PROJECTS)
        # All projects change in one transaction: they are all old or all new.
        assert len(set(versions.values())) == 1, versions
        if recovered is None:
            outcome = "nothing to do"
        elif recovered.action is None:
            outcome = "staging removed"
        else:
            outcome = recovered.action
        outcomes.append((aim, outcome))
    assert len(outcomes) >= 4, outcomes
    # Kills did land in the transaction (the deterministic test below covers each direction).
    assert {"rolled back", "rolled forward"} & {outcome for _, outcome in outcomes}, outcomes


@pytest.mark.parametrize(
    ("kill_at", "action", "becomes"),
    [
        ("move:0", "rolled back", "1.0"),
        ("move:5", "rolled back", "1.0"),
        ("commit", "rolled forward", "2.0"),
    ],
)
def test_killed_at_a_given_step_is_rolled_back_or_forward_by_the_rule(
    kill_at: str, action: str, becomes: str, tmp_path: Path, releases: dict[str, Path]
) -> None:
    venv = tmp_path / "venv"
    target = TargetInterpreter.query(new_venv(venv))
    subprocess.run(_driver_argv(releases["1.0"], venv), env=_env(), check=True)
    killed = subprocess.run(
        _driver_argv(releases["2.0"], venv), env=_env(FETCHPLAN_TEST_KILL_AT=kill_at), check=False
    )
    assert killed.returncode == -signal.SIGKILL
    assert (venv / ".fetchplan" / JOURNAL).is_file()
    with environment_lock(target) as recovered:
        assert recovered is not None and recovered.action == action
    assert set(check_environment(target, PROJECTS).values()) == {becomes}


def test_command_line_killed_in_its_transaction_is_rolled_back_by_the_next(
    tmp_path: Path, releases: dict[str, Path], run_cli: RunCli
) -> None:
    venv = tmp_path / "venv"
    target = TargetInterpreter.query(new_venv(venv))
    assert run_cli("install", releases["1.0"], "--venv", venv).returncode == 0
    argv = ["cli", "install", str(releases["2.0"]), "--venv", str(venv)]
    killed = subprocess.run(
        [sys.executable, "-c", DRIVER, *argv],
        env=_env(FETCHPLAN_TEST_KILL_AT="move:3"),
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    assert (venv / ".fetchplan" / JOURNAL).is_file()
    done = run_cli("install", releases["2.0"], "--venv", venv)
    assert done.returncode == 0, done.stderr
    assert "an interrupted install was rolled back" in done.stderr, done.stderr
    assert set(check_environment(target, PROJECTS).values()) == {"2.0"}


def test_a_broken_journal_is_refused_naming_it_and_touches_nothing(
    tmp_path: Path, releases: dict[str, Path], run_cli: RunCli
) -> None:
    venv = tmp_path / "venv"
    new_venv(venv)
    state = venv / ".fetchplan"
    state.mkdir()
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    aside = {"path": str(outside), "backup": str(venv / "x.old"), "tree": False}
    empty = {"format": 1, "id": "ab12cd34", "made": [], "in": [], "prune": [], "staging": []}
    for text, reason in [
        ("{", "not valid JSON: "),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (json.dumps({**empty, "aside": [], "format": 7}), "format: "),
        (json.dumps({**empty, "aside": [aside]}), f"aside[0].path: {str(outside)!r} is not inside"),
    ]:
        (state / JOURNAL).write_text(text)
        done = run_cli("install", releases["1.0"], "--venv", venv)
        assert done.returncode != 0
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert f"{state / JOURNAL}: " in done.stderr and reason in done.stderr, done.stderr
    assert outside.read_text() == "keep"
    site = Path(TargetInterpreter.query(venv / "bin" / "python").paths["purelib"])
    assert not list(site.glob("*.dist-info"))


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_a_move_across_file_systems_finishes_when_run_again(tmp_path: Path) -> None:
    from fetchplan.install.transaction import _move

    files = {f"pkg/sub{n % 3}/m{n}.py": f"N = {n}\n".encode() for n in range(12)}
    other = Path(tempfile.mkdtemp(dir="/dev/shm"))  # tmpfs: another file system than tmp_path
    try:
        assert other.stat().st_dev != tmp_path.stat().st_dev
        src = other / "pkg"
        for name, data in files.items():
            (other / name).parent.mkdir(parents=True, exist_ok=True)
            (other / name).write_bytes(data)
        # A move interrupted half way: some files copied already, the source still whole.
        dst = tmp_path / "site" / "pkg"
        (dst / "sub0").mkdir(parents=True)
        (dst / "sub0" / "m0.py").write_bytes(b"half")
        _move(str(src), str(dst), tree=True, part=f"{dst}.part")
        assert _tree(tmp_path / "site") == files
        assert not src.exists()
        single = other / "one.py"
        single.write_bytes(b"one")
        _move(str(single), str(tmp_path / "one.py"), tree=False, part=str(tmp_path / "one.part"))
        assert (tmp_path / "one.py").read_bytes() == b"one"
        assert not single.exists() and not (tmp_path / "one.part").exists()
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_run_with_no_wait_leaves_a_busy_environment_alone(
    nginx_server: MakeNginxServer, tmp_path: Path, run_cli: RunCli
) -> None:
    server = nginx_server([Dist("solo", "1.0")])
    target = TargetInterpreter.query(new_venv(tmp_path / "venv"))
    argv = ["run", "solo", "--index-url", server.index_url, "--venv", "venv", "--no-wait"]
    with environment_lock(target):
        done = run_cli(*argv)
    assert done.returncode == 75, done.stderr
    assert "is installing into it (--no-wait was given)" in done.stderr, done.stderr
    assert not list(Path(target.paths["purelib"]).glob("solo*"))
    done = run_cli(*argv)
    assert done.returncode == 0, done.stderr
    assert (Path(target.paths["purelib"]) / "solo-1.0.dist-info").is_dir()


def test_a_failure_in_the_middle_of_the_change_undoes_it(
    tmp_path: Path, releases: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from fetchplan.install import InstallError, install_manifest, transaction
    from tests.support.hostile import snapshot

    target = TargetInterpreter.query(new_venv(tmp_path / "venv"))
    install_manifest(releases["1.0"], target)
    before = snapshot(Path(target.prefix))
    move = transaction._move
    calls = [0]

    def full_disk_at_the_fifth(src: str, dst: str, *, tree: bool, part: str) -> None:
        calls[0] += 1
        if calls[0] == 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), dst)
        move(src, dst, tree=tree, part=part)

    monkeypatch.setattr(transaction, "_move", full_disk_at_the_fifth)
    with pytest.raises(InstallError) as info:
        install_manifest(releases["2.0"], target)
    message = str(info.value)
    assert "No space left on device; nothing was changed" in message and "\n" not in message
    assert calls[0] == 5
    assert snapshot(Path(target.prefix)) == before
    assert set(check_environment(target, PROJECTS).values()) == {"1.0"}
