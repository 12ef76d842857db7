"""What ``plan``, ``install`` and ``run`` tell a person, and where they install and write.

Through the command line, as a user runs it: piped (summary lines only, uv's wording), on a
terminal (a pseudo-terminal: live lines drawn and erased), with ``-q`` (nothing). And the
behaviours that come with them: the active virtual environment by default, ``install
--dry-run`` and ``--exact``, and ``run`` leaving nothing in the current directory.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from tests.conftest import CLI_TIMEOUT, REPO_ROOT, MakeIndex, MakeIndexServer, RunCli
from tests.support.hostile import make_fetched_dest, new_venv, snapshot
from tests.support.processes import Processes
from tests.support.servers import ServerOptions
from tests.support.wheels import Dist

ELAPSED = r"(\d+\.\d\dms|\d+ms|\d+\.\d\ds|\d+m \d\ds)"
ESCAPE = "\x1b"


def _on_terminal(
    processes: Processes, argv: list[str], *, env: dict[str, str], cwd: Path
) -> tuple[int, str]:
    """Run ``argv`` with stdin, stdout and stderr on a pseudo-terminal; its exit code and all
    it wrote there."""
    main, child = pty.openpty()
    proc = processes.start(argv, stdin=child, stdout=child, stderr=child, env=env, cwd=cwd)
    os.close(child)
    chunks: list[bytes] = []
    deadline = time.monotonic() + CLI_TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: the child side is closed
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=CLI_TIMEOUT)
    finally:
        os.close(main)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


def _installed(python: Path) -> dict[str, str]:
    """Name -> version of what the environment of ``python`` holds, as its metadata says."""
    code = (
        "import json, importlib.metadata as m; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def _install_argv(fetchplan_cmd: list[str], manifest: Path, *args: str | Path) -> list[str]:
    return [*fetchplan_cmd, "install", str(manifest), *map(str, args)]


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=CLI_TIMEOUT, check=False
    )


# -- summaries, piped ---------------------------------------------------------------------------


def test_install_summary_lines_piped_are_uv_s(
    tmp_path: Path, cli_env: dict[str, str], fetchplan_cmd: list[str]
) -> None:
    python = new_venv(tmp_path / "venv")
    first = make_fetched_dest(tmp_path, [Dist("zeta", "1.0"), Dist("Alpha_Lib", "1.0")], name="one")
    done = _run(_install_argv(fetchplan_cmd, first, "--python", python), cli_env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [" + alpha-lib==1.0", " + zeta==1.0"]
    assert re.fullmatch(rf"Installed 2 packages in {ELAPSED}", done.stdout.splitlines()[0])

    # zeta replaced, alpha-lib left alone, mid added: one line per change, sorted by name,
    # the removal of an old version before its replacement.
    second = make_fetched_dest(
        tmp_path, [Dist("zeta", "2.0"), Dist("Alpha_Lib", "1.0"), Dist("mid", "1.0")], name="two"
    )
    done = _run(_install_argv(fetchplan_cmd, second, "--python", python), cli_env, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Uninstalled 1 package"
    assert re.fullmatch(rf"Installed 2 packages in {ELAPSED}", lines[1])
    assert lines[2:] == [" + mid==1.0", " - zeta==1.0", " + zeta==2.0"]
    assert ESCAPE not in done.stdout + done.stderr
    assert "\r" not in done.stdout + done.stderr
    assert _installed(python) == {"Alpha_Lib": "1.0", "mid": "1.0", "zeta": "2.0"}

    again = _run(
        _install_argv(fetchplan_cmd, second, "--python", python, "--reinstall"), cli_env, tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == "Uninstalled 3 packages"
    assert again.stdout.splitlines()[2:] == [" ~ alpha-lib==1.0", " ~ mid==1.0", " ~ zeta==2.0"]

    same = _run(_install_argv(fetchplan_cmd, second, "--python", python), cli_env, tmp_path)
    assert re.fullmatch(rf"Audited 3 packages in {ELAPSED}\n", same.stdout)

    quiet = _run(_install_argv(fetchplan_cmd, first, "--python", python, "-q"), cli_env, tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert (quiet.stdout, quiet.stderr) == ("", "")
    assert _installed(python)["zeta"] == "1.0"


# -- the active virtual environment -----------------------------------------------------------


def test_install_uses_the_active_virtual_environment_and_says_so(
    tmp_path: Path, cli_env: dict[str, str], fetchplan_cmd: list[str]
) -> None:
    python = new_venv(tmp_path / "active")
    manifest = make_fetched_dest(tmp_path, [Dist("app", "1.0")])
    env = {**cli_env, "VIRTUAL_ENV": str(tmp_path / "active")}
    done = _run(_install_argv(fetchplan_cmd, manifest), env, tmp_path)
    assert done.returncode == 0, done.stderr
    version = ".".join(map(str, sys.version_info[:3]))
    assert done.stderr == (
        f"Using Python {version} environment at: {tmp_path / 'active'} (VIRTUAL_ENV)\n"
    )
    assert " + app==1.0" in done.stdout.splitlines()
    assert _installed(python) == {"app": "1.0"}

    # --venv wins over VIRTUAL_ENV, and is not announced.
    other = _run(
        _install_argv(fetchplan_cmd, manifest, "--venv", tmp_path / "other"), env, tmp_path
    )
    assert other.returncode == 0, other.stderr
    assert other.stderr == ""
    assert _installed(tmp_path / "other" / "bin" / "python") == {"app": "1.0"}

    # None active: today's one-line error, nothing made.
    env.pop("VIRTUAL_ENV")
    none = _run(_install_argv(fetchplan_cmd, manifest), env, tmp_path)
    assert none.returncode != 0
    assert none.stderr == (
        "fetchplan: error: install: give the environment with --venv DIR or --python PY (or "
        "activate a virtual environment)\n"
    )
    gone = _run(
        _install_argv(fetchplan_cmd, manifest),
        {**env, "VIRTUAL_ENV": str(tmp_path / "missing")},
        tmp_path,
    )
    assert gone.returncode != 0
    assert gone.stderr.startswith(f"fetchplan: error: VIRTUAL_ENV: {tmp_path / 'missing'}: ")
    assert not (tmp_path / "missing").exists()


def test_install_finds_the_nearest_dot_venv_when_none_is_active(
    tmp_path: Path, cli_env: dict[str, str], fetchplan_cmd: list[str]
) -> None:
    project = tmp_path / "project"
    python = new_venv(project / ".venv")
    manifest = make_fetched_dest(tmp_path, [Dist("app", "1.0")])
    deeper = project / "src" / "pkg"
    deeper.mkdir(parents=True)
    # A nearer `.venv` that is no environment (a plain directory) is passed over.
    (project / "src" / ".venv").mkdir()
    done = _run(_install_argv(fetchplan_cmd, manifest), cli_env, deeper)
    assert done.returncode == 0, done.stderr
    version = ".".join(map(str, sys.version_info[:3]))
    assert done.stderr == f"Using Python {version} environment at: {project / '.venv'} (.venv)\n"
    assert _installed(python) == {"app": "1.0"}
    assert list((project / "src" / ".venv").iterdir()) == []

    # VIRTUAL_ENV wins over a `.venv` found by looking.
    other = new_venv(tmp_path / "active")
    env = {**cli_env, "VIRTUAL_ENV": str(tmp_path / "active")}
    active = _run(_install_argv(fetchplan_cmd, manifest), env, deeper)
    assert active.returncode == 0, active.stderr
    assert "(VIRTUAL_ENV)" in active.stderr
    assert _installed(other) == {"app": "1.0"}


# -- --dry-run and --exact ----------------------------------------------------------------------


def test_install_dry_run_lists_changes_and_changes_nothing(
    tmp_path: Path, cli_env: dict[str, str], fetchplan_cmd: list[str]
) -> None:
    python = new_venv(tmp_path / "venv")
    old = make_fetched_dest(
        tmp_path, [Dist("keep", "1.0"), Dist("bump", "1.0"), Dist("stray", "3.0")], name="old"
    )
    assert (
        _run(_install_argv(fetchplan_cmd, old, "--python", python), cli_env, tmp_path).returncode
        == 0
    )
    new = make_fetched_dest(
        tmp_path, [Dist("keep", "1.0"), Dist("bump", "2.0"), Dist("fresh", "1.0")], name="new"
    )
    before = snapshot(tmp_path / "venv")

    dry = _run(
        _install_argv(fetchplan_cmd, new, "--python", python, "--dry-run"), cli_env, tmp_path
    )
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "Would uninstall 1 package",
        "Would install 2 packages",
        " - bump==1.0",
        " + bump==2.0",
        " + fresh==1.0",
        "Would leave 1 package as installed",
        " = keep==1.0",
    ]
    exact = _run(
        _install_argv(fetchplan_cmd, new, "--python", python, "--dry-run", "--exact"),
        cli_env,
        tmp_path,
    )
    assert exact.returncode == 0, exact.stderr
    assert exact.stdout.splitlines()[:5] == [
        "Would uninstall 2 packages",
        "Would install 2 packages",
        " - bump==1.0",
        " + bump==2.0",
        " + fresh==1.0",
    ]
    assert exact.stdout.splitlines()[5] == " - stray==3.0"
    assert snapshot(tmp_path / "venv") == before

    # A venv that does not exist yet is not made: everything would be installed into it.
    absent = tmp_path / "absent"
    made = _run(_install_argv(fetchplan_cmd, new, "--venv", absent, "--dry-run"), cli_env, tmp_path)
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines() == [
        f"Would create virtual environment at: {absent}",
        "Would install 3 packages",
        " + bump==2.0",
        " + fresh==1.0",
        " + keep==1.0",
    ]
    assert not absent.exists()

    # A wheel the manifest does not vouch for is refused by a dry run as by an install.
    tampered = new.read_text().replace(
        '"fresh-1.0-py3-none-any.whl"', '"other-1.0-py3-none-any.whl"'
    )
    new.write_text(tampered)
    refused = _run(
        _install_argv(fetchplan_cmd, new, "--python", python, "--dry-run"), cli_env, tmp_path
    )
    assert refused.returncode != 0
    assert "fresh-1.0-py3-none-any.whl" in refused.stderr
    assert snapshot(tmp_path / "venv") == before


def test_install_exact_removes_what_the_manifest_does_not_list_but_the_installer_tools(
    tmp_path: Path, cli_env: dict[str, str], fetchplan_cmd: list[str], test_tools: Path
) -> None:
    python = new_venv(tmp_path / "venv")
    tools = sorted(test_tools.glob("*.whl"))
    assert {p.name.split("-")[0] for p in tools} >= {"pip", "setuptools", "wheel"}
    seeded = make_fetched_dest(
        tmp_path,
        [*tools, Dist("stray", "1.0", console_scripts={"stray": "stray:main"})],
        name="seed",
    )
    first = _run(_install_argv(fetchplan_cmd, seeded, "--python", python), cli_env, tmp_path)
    assert first.returncode == 0, first.stderr
    tool_versions = {n: v for n, v in _installed(python).items() if n != "stray"}
    assert (tmp_path / "venv" / "bin" / "stray").is_file()

    app = make_fetched_dest(
        tmp_path, [Dist("app", "1.0", requires=["dep"]), Dist("dep", "2.0")], name="app"
    )
    done = _run(_install_argv(fetchplan_cmd, app, "--python", python, "--exact"), cli_env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "Uninstalled 1 package"
    assert done.stdout.splitlines()[2:] == [" + app==1.0", " + dep==2.0", " - stray==1.0"]
    assert _installed(python) == {**tool_versions, "app": "1.0", "dep": "2.0"}
    assert not (tmp_path / "venv" / "bin" / "stray").exists()
    site = next((tmp_path / "venv" / "lib").glob("python*/site-packages"))
    assert not (site / "stray").exists()
    # pip itself still works, and sees the same.
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert {d["name"] for d in json.loads(listed.stdout)} == {*tool_versions, "app", "dep"}

    # Listed, a tool is managed like any project (here replaced); the others stay.
    with_pip = make_fetched_dest(tmp_path, [Dist("app", "1.0"), Dist("pip", "99.0")], name="pip")
    again = _run(
        _install_argv(fetchplan_cmd, with_pip, "--python", python, "--exact"), cli_env, tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[2:] == [
        " - dep==2.0",
        f" - pip=={tool_versions['pip']}",
        " + pip==99.0",
    ]
    assert _installed(python) == {**tool_versions, "pip": "99.0", "app": "1.0"}


def test_install_exact_never_removes_fetchplan_from_the_environment_it_runs_from(
    tmp_path: Path, cli_env: dict[str, str], fetchplan_cmd: list[str]
) -> None:
    # fetchplan runs from an environment that has a distribution named fetchplan installed
    # (its code comes from this checkout, its dependencies from the tests' interpreter).
    home = new_venv(tmp_path / "home")
    own = make_fetched_dest(
        tmp_path, [Dist("fetchplan", "0.0", files={"fetchplan_marker.py": b""})], name="own"
    )
    assert (
        _run(_install_argv(fetchplan_cmd, own, "--python", home), cli_env, tmp_path).returncode == 0
    )
    purelib = sysconfig.get_paths()["purelib"]
    env = {**cli_env, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), purelib])}
    app = make_fetched_dest(tmp_path, [Dist("app", "1.0")], name="app")
    argv = [str(home), "-m", "fetchplan", "install", str(app), "--python", str(home), "--exact"]
    refused = _run(argv, env, tmp_path)
    assert refused.returncode != 0
    assert refused.stderr == (
        f"fetchplan: error: --exact: {tmp_path / 'home'} is the environment fetchplan runs "
        "from, and the manifest does not list fetchplan: it would remove itself; install into "
        "another environment\n"
    )
    assert _installed(home) == {"fetchplan": "0.0"}
    # Without --exact, nothing is removed and the install goes ahead.
    done = _run(argv[:-1], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert _installed(home) == {"fetchplan": "0.0", "app": "1.0"}


# -- on a terminal ------------------------------------------------------------------------------


def test_plan_draws_a_live_line_on_a_terminal_and_only_the_summary_when_piped(  # noqa: PLR0917 - fixtures
    tmp_path: Path,
    cli_env: dict[str, str],
    fetchplan_cmd: list[str],
    index_server: MakeIndexServer,
    make_index: MakeIndex,
    processes: Processes,
) -> None:
    dists = [Dist("app", "1.0", requires=["lib", "util"]), Dist("lib", "1.0"), Dist("util", "2.0")]
    # Slow answers, so that resolving lasts several redraws of the line.
    server = index_server(make_index(dists), options=ServerOptions(delay=0.15))
    argv = [*fetchplan_cmd, "plan", "app", "-i", server.index_url, "--no-cache"]
    code, shown = _on_terminal(processes, argv, env=cli_env, cwd=tmp_path)
    assert code == 0, shown
    frames = re.findall(r"\r\x1b\[2Kresolving: (\d+) projects seen, (\d+) metadata fetched", shown)
    assert frames[0] == ("0", "0")
    assert frames[-1] == ("3", "3")
    assert len(frames) >= 3
    # The line is erased before the summary, which stays.
    assert re.search(rf"\r\x1b\[2KResolved 3 packages in {ELAPSED}\r?\n", shown)
    assert "wrote plan.json: 3 artifacts, 3 to fetch" in shown

    piped = _run(argv, cli_env, tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""
    lines = piped.stdout.splitlines()
    assert re.fullmatch(rf"Resolved 3 packages in {ELAPSED}", lines[0])
    assert lines[1].startswith("wrote plan.json: 3 artifacts, 3 to fetch")
    assert len(lines) == 2

    code, quiet = _on_terminal(processes, [*argv, "-q"], env=cli_env, cwd=tmp_path)
    assert code == 0, quiet
    assert quiet == ""


def test_install_draws_its_progress_on_a_terminal(
    tmp_path: Path, cli_env: dict[str, str], fetchplan_cmd: list[str], processes: Processes
) -> None:
    python = new_venv(tmp_path / "venv")
    manifest = make_fetched_dest(
        tmp_path, [Dist("one", "1.0"), Dist("two", "1.0", padding=300_000), Dist("six", "1.0")]
    )
    code, shown = _on_terminal(
        processes,
        _install_argv(fetchplan_cmd, manifest, "--python", python),
        env=cli_env,
        cwd=tmp_path,
    )
    assert code == 0, shown
    frames = re.findall(r"\r\x1b\[2Kinstalling (\d)/3( [a-z]+)?", shown)
    assert frames[0] == ("0", "")
    assert frames[-1][0] == "3"
    assert frames[-1][1].strip() in {"one", "two", "six"}
    summary = shown[shown.rindex("\x1b[2K") + len("\x1b[2K") :].replace("\r\n", "\n")
    assert re.fullmatch(
        rf"Installed 3 packages in {ELAPSED}\n \+ one==1.0\n \+ six==1.0\n \+ two==1.0\n", summary
    )

    code, quiet = _on_terminal(
        processes,
        _install_argv(fetchplan_cmd, manifest, "--python", python, "--reinstall", "-q"),
        env=cli_env,
        cwd=tmp_path,
    )
    assert code == 0, quiet
    assert quiet == ""


# -- run ----------------------------------------------------------------------------------------


def test_run_leaves_nothing_in_the_current_directory(  # noqa: PLR0917 - fixtures
    tmp_path: Path,
    cli_env: dict[str, str],
    fetchplan_cmd: list[str],
    index_server: MakeIndexServer,
    make_index: MakeIndex,
    run_cli: RunCli,
) -> None:
    server = index_server(make_index([Dist("app", "1.0", requires=["lib"]), Dist("lib", "1.0")]))
    python = new_venv(tmp_path / "env")
    work = tmp_path / "work"
    work.mkdir()
    env = {**cli_env, "VIRTUAL_ENV": str(tmp_path / "env")}
    argv = [*fetchplan_cmd, "run", "app", "-i", server.index_url]
    done = _run(argv, env, work)
    assert done.returncode == 0, done.stderr
    assert list(work.iterdir()) == []
    assert _installed(python) == {"app": "1.0", "lib": "1.0"}
    lines = done.stdout.splitlines()
    assert re.fullmatch(rf"Resolved 2 packages in {ELAPSED}", lines[0])
    assert not any(line.startswith("manifest: ") for line in lines)
    assert lines[-3].startswith("Installed 2 packages in ")
    assert lines[-2:] == [" + app==1.0", " + lib==1.0"]
    version = ".".join(map(str, sys.version_info[:3]))
    assert done.stderr == (
        f"Using Python {version} environment at: {tmp_path / 'env'} (VIRTUAL_ENV)\n"
    )
    # The work directory in the cache is gone too; the verified wheels stay in the cache.
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "fetchplan"
    assert list((cache / "runs").iterdir()) == []
    assert len([p for p in (cache / "sha256").rglob("*") if p.is_file()]) == 2

    # --dest names a place: the downloads, the manifest and the plan's copy are kept there
    # (and the replay works from it), the current directory still holds nothing else.
    kept = _run([*argv, "--reinstall", "--dest", "kept"], env, work)
    assert kept.returncode == 0, kept.stderr
    assert [p.name for p in work.iterdir()] == ["kept"]
    assert (work / "kept" / "manifest.json").is_file()
    assert (work / "kept" / "plan.json").is_file()
    assert "manifest: kept/manifest.json" in kept.stdout.splitlines()
    replay = _run([*fetchplan_cmd, "install", "kept", "--dry-run"], env, work)
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.splitlines() == [
        "Would leave 2 packages as installed",
        " = app==1.0",
        " = lib==1.0",
    ]

    quiet = _run([*argv, "--reinstall", "-q"], env, work)
    assert quiet.returncode == 0, quiet.stderr
    assert (quiet.stdout, quiet.stderr) == ("", "")
    assert [p.name for p in work.iterdir()] == ["kept"]

    # -o names the plan: it and the default destination beside it stay.
    named = run_cli("run", "app", "-i", server.index_url, "--venv", "venv", "-o", "out/plan.json")
    assert named.returncode == 0, named.stderr
    assert (tmp_path / "out" / "plan.json").is_file()
    assert (tmp_path / "out" / "wheels" / "manifest.json").is_file()
    assert "(VIRTUAL_ENV)" not in named.stderr


def test_run_dry_run_resolves_and_changes_nothing_then_exact_removes_the_unlisted(
    tmp_path: Path,
    cli_env: dict[str, str],
    fetchplan_cmd: list[str],
    index_server: MakeIndexServer,
    make_index: MakeIndex,
) -> None:
    server = index_server(
        make_index(
            [
                Dist("app", "1.0", requires=["lib"]),
                Dist("app", "2.0", requires=["lib"]),
                Dist("lib", "1.0"),
                Dist("stray", "3.0"),
            ]
        )
    )
    python = new_venv(tmp_path / "venv")
    work = tmp_path / "work"
    work.mkdir()
    run = [*fetchplan_cmd, "run", "-i", server.index_url, "--python", str(python)]
    first = _run([*run, "app==1.0", "stray"], cli_env, work)
    assert first.returncode == 0, first.stderr
    before = snapshot(tmp_path / "venv")

    dry = _run([*run, "app", "--dry-run"], cli_env, work)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert re.fullmatch(rf"Resolved 2 packages in {ELAPSED}", lines[0])
    assert lines[1:] == [
        "Would uninstall 1 package",
        "Would install 1 package",
        " - app==1.0",
        " + app==2.0",
        "Would leave 1 package as installed",
        " = lib==1.0",
    ]
    assert snapshot(tmp_path / "venv") == before
    assert list(work.iterdir()) == []
    # Nothing was fetched: the cache holds the first run's three wheels only.
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "fetchplan"
    assert len([p for p in (cache / "sha256").rglob("*") if p.is_file()]) == 3

    absent = tmp_path / "absent"
    made = _run(
        [*fetchplan_cmd, "run", "-i", server.index_url, "app", "--venv", str(absent), "--dry-run"],
        cli_env,
        work,
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines()[1:] == [
        f"Would create virtual environment at: {absent}",
        "Would install 2 packages",
        " + app==2.0",
        " + lib==1.0",
    ]
    assert not absent.exists()

    exact = _run([*run, "app", "--exact"], cli_env, work)
    assert exact.returncode == 0, exact.stderr
    assert _installed(python) == {"app": "2.0", "lib": "1.0"}
    assert " - stray==3.0" in exact.stdout.splitlines()


def test_cache_prune_removes_the_work_directory_a_killed_run_left(
    tmp_path: Path, run_cli: RunCli
) -> None:
    runs = tmp_path / "cache" / "runs"
    killed, running = runs / "run-killed", runs / "run-running"
    for work in (killed, running):
        (work / "wheels").mkdir(parents=True)
        (work / "plan.json").write_text("{}")
        (work / "wheels" / "a-1.0-py3-none-any.whl").write_bytes(b"x" * 100)
    two_days_ago = time.time() - 2 * 86400
    for path in (*killed.rglob("*"), killed):
        os.utime(path, (two_days_ago, two_days_ago))
    # A run that wrote a file an hour ago is still running, however old the rest.
    for path in (running / "plan.json", running):
        os.utime(path, (two_days_ago, two_days_ago))

    info = run_cli("cache", "info", "--cache-dir", tmp_path / "cache")
    assert info.returncode == 0, info.stderr
    assert ["runs", "4", "files"] in [line.split()[:3] for line in info.stdout.splitlines()]
    pruned = run_cli("cache", "prune", "--cache-dir", tmp_path / "cache")
    assert pruned.returncode == 0, pruned.stderr
    assert "pruned 2 files" in pruned.stdout
    assert not killed.exists()
    assert (running / "plan.json").is_file()
