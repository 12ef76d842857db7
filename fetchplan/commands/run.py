"""``fetchplan run``: plan, fetch and install in one command, leaving the plan and manifest.

The stages overlap where that is safe (see :mod:`fetchplan.pipeline`, which wires them): the
virtual environment is created (and its interpreter asked to describe itself) while the plan
is resolved, and each wheel is verified and unpacked into staging inside the environment as
soon as the executor has verified it, while the other downloads go on. Nothing reaches the
environment until every download is verified and every wheel staged: a failed download or a
hostile wheel leaves it untouched. The command checks its arguments, finds the plan's place
and the environment, and prints between the stages.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fetchplan.commands._args import (
    add_allow_unhashed_argument,
    add_link_mode_argument,
    add_mirror_argument,
    add_no_wait_argument,
    add_per_host_argument,
    add_progress_argument,
)
from fetchplan.errors import InputError

if TYPE_CHECKING:
    from fetchplan.executor import FetchOptions, FetchResult
    from fetchplan.install import TargetInterpreter
    from fetchplan.pipeline import InstallOptions
    from fetchplan.planner.api import PlanOptions, PlanResult
    from fetchplan.schemas.plan import Artifact

__all__ = ["register"]

_DESCRIPTION = """\
Resolve requirements into a plan, fetch and verify its artifacts, and install them into an
environment, in one command. By default nothing is left in the current directory: the plan
and the downloads live in a work directory in the cache (verified files stay in the cache).
With -o PLAN (the destination is then 'wheels' beside it) or --dest DIR, the plan and the
verified manifest stay there for auditing, and `fetchplan install DIR` can replay them.
Without --venv or --python, installs into the active virtual environment (VIRTUAL_ENV),
else the nearest .venv in the current directory or a parent.
Takes every option of `fetchplan plan`, plus the ones below.
"""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``run`` sub-command."""
    from fetchplan.commands.plan import add_arguments

    p = subparsers.add_parser(
        "run",
        parents=[common],
        help="plan, fetch and install in one command",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    # No plan file unless asked for: see _workspace.
    p.set_defaults(output=None)
    for action in p._actions:
        if action.dest == "output":
            action.help = (
                "keep the plan in this file; YAML when it ends in .yaml/.yml (default: none "
                "kept; the run works in a directory in the cache, removed at the end)"
            )
        elif action.dest == "dest":
            action.help = (
                "keep the downloads, the verified manifest and a copy of the plan in DIR "
                "(default: 'wheels' beside -o PLAN; without -o, none kept)"
            )
    env = p.add_argument_group("install into (default: the active virtual environment)")
    where = env.add_mutually_exclusive_group()
    where.add_argument(
        "--venv", type=Path, metavar="DIR", help="a virtual environment, created when missing"
    )
    where.add_argument(
        "--python", type=Path, metavar="PY", help="the environment of this interpreter"
    )
    env.add_argument(
        "--venv-python",
        type=Path,
        metavar="PY",
        help="the interpreter a new --venv is made with (default: this one)",
    )
    env.add_argument("--reinstall", action="store_true", help="reinstall planned projects")
    env.add_argument("--no-compile", action="store_true", help="do not byte-compile")
    env.add_argument(
        "--exact",
        action="store_true",
        help="also remove what the plan does not list (as `uv pip sync` does), except pip, "
        "setuptools and wheel unless it lists them",
    )
    env.add_argument(
        "--dry-run",
        action="store_true",
        help="resolve, then say what would be installed, replaced and removed: nothing is "
        "fetched, and neither a missing --venv nor anything in an environment is made",
    )
    add_link_mode_argument(env)
    fetch = p.add_argument_group("fetching")
    add_per_host_argument(fetch)
    add_mirror_argument(fetch)
    fetch.add_argument(
        "--policy", type=Path, metavar="FILE", help="refuse to fetch a plan that breaks it"
    )
    add_allow_unhashed_argument(fetch)
    add_no_wait_argument(fetch)
    add_progress_argument(
        fetch, "download progress: bars on a terminal, none otherwise (auto); plain lines"
    )
    p.set_defaults(func=run)


def _fetch_timings_path(plan_timings: Path | None) -> Path | None:
    """``--timings t.json`` keeps the plan's timings there and the fetch's in ``t.fetch.json``."""
    if plan_timings is None:
        return None
    return plan_timings.with_name(f"{plan_timings.stem}.fetch{plan_timings.suffix or '.json'}")


def _fetch_options(args: argparse.Namespace) -> FetchOptions:
    from fetchplan.commands._shared import env_policies
    from fetchplan.executor import FetchOptions
    from fetchplan.executor.run import DEFAULT_PER_HOST

    retry, limits = env_policies()
    credential_urls = ([args.index_url] if args.index_url else []) + list(args.extra_index_urls)
    return FetchOptions(
        per_host=args.per_host if args.per_host is not None else DEFAULT_PER_HOST,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        allow_unhashed=args.allow_unhashed,
        trusted_hosts=tuple(args.trusted_hosts),
        credential_urls=tuple(credential_urls),
        use_pip_config=not args.isolated,
        wait_for_lock=not args.no_wait,
        retry=retry,
        limits=limits,
        timings_path=_fetch_timings_path(args.timings),
        mirror=args.mirror,
        offline=args.offline,
    )


def _interpreter(args: argparse.Namespace, active: Path | None) -> TargetInterpreter:
    from fetchplan.commands._shared import interpreter_cache, note_on_stderr
    from fetchplan.install import TargetInterpreter, ensure_venv

    if active is not None:
        python = active
    elif args.venv is not None:
        quiet = (getattr(args, "quiet", None) or 0) > 0
        python = ensure_venv(
            args.venv,
            python=args.venv_python,
            wait=not args.no_wait,
            on_wait=None if quiet else note_on_stderr,
        )
    else:
        python = args.python
    return TargetInterpreter.query(python, cache_dir=interpreter_cache(args))


@dataclass(slots=True)
class _Workspace:
    plan: Path
    """Where the plan is written."""
    failed: bool = False
    """Set when the run failed: a work directory that is the only copy of what was
    downloaded is kept then."""


@contextmanager
def _workspace(args: argparse.Namespace) -> Iterator[_Workspace]:
    """Where the plan is written: ``-o``; else ``plan.json`` in ``--dest``; else, with
    neither, in a work directory of its own, removed at the end.

    The work directory lives in the cache's ``runs/`` (the cache's filesystem: files are
    hard-linked from the cache, and large wheels do not fill a RAM-backed /tmp); verified
    downloads are in the cache already, so nothing fetched is lost with it. With
    ``--no-cache`` it is a temporary directory, kept when the run fails so that what it
    downloaded is not lost (its path is said on stderr).
    """
    if args.output is not None:
        yield _Workspace(args.output)
        return
    if args.dest is not None:
        # Where the executor would put its copy of the plan, beside the manifest.
        yield _Workspace(args.dest / "plan.json")
        return
    from fetchplan.cache import default_cache_dir

    parent: Path | None = None
    if not args.no_cache:
        parent = (args.cache_dir or default_cache_dir()) / "runs"
        parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
    workspace = _Workspace(work / "plan.json", failed=True)
    try:
        yield workspace
    finally:
        if workspace.failed and parent is None:
            sys.stderr.write(f"fetchplan: the plan and downloads of this run are kept in {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    """Plan, then fetch while staging each verified wheel, then install all at once."""
    if args.venv is None and args.venv_python is not None:
        raise InputError("--venv-python only goes with --venv")
    from fetchplan.commands._shared import active_environment

    active = active_environment("run") if args.venv is None and args.python is None else None
    with _workspace(args) as workspace:
        temporary = args.output is None and args.dest is None
        code = _run(_with_output(args, workspace.plan), active, temporary=temporary)
        workspace.failed = code != 0
    return code


def _with_output(args: argparse.Namespace, plan_path: Path) -> argparse.Namespace:
    """``args`` with ``output`` set to ``plan_path``."""
    values = vars(args).copy()
    values["output"] = plan_path
    return argparse.Namespace(**values)


def _shown(path: Path) -> str:
    """``path`` normalised, relative to the current directory when it lies below it."""
    absolute = Path(os.path.normpath(path.absolute()))
    here = Path.cwd()
    return str(absolute.relative_to(here) if absolute.is_relative_to(here) else absolute)


def _plans_for_its_python(args: argparse.Namespace, active: Path | None) -> bool:
    """Another interpreter and no target asked for: the plan is for that interpreter."""
    other = args.python is not None or active is not None
    return other and not (
        args.python_version
        or args.platforms
        or args.implementation
        or args.abis
        or args.target_specs
    )


def _install_options(args: argparse.Namespace) -> InstallOptions:
    from fetchplan.install.store import WheelStore, default_store_dir
    from fetchplan.pipeline import InstallOptions

    return InstallOptions(
        reinstall=args.reinstall,
        compile=not args.no_compile,
        wait=not args.no_wait,
        store=None if args.no_cache else WheelStore(default_store_dir(args.cache_dir)),
        link_mode=args.link_mode,
        exact=args.exact,
    )


def _existing_interpreter(args: argparse.Namespace, active: Path | None) -> TargetInterpreter:
    """``--dry-run``'s interpreter: the environment's when it exists, else the one a new
    ``--venv`` would be made with (asked only for its tags and markers); nothing is made."""
    from fetchplan.commands._shared import interpreter_cache
    from fetchplan.install import TargetInterpreter, venv_python

    python = active if active is not None else args.python
    if python is None:
        made = venv_python(args.venv)
        exists = (args.venv / "pyvenv.cfg").is_file() and made.exists()
        python = made if exists else (args.venv_python or Path(sys.executable))
    return TargetInterpreter.query(python, cache_dir=interpreter_cache(args))


def _show_dry_run(
    args: argparse.Namespace, needed: dict[str, Artifact], target: TargetInterpreter
) -> int:
    """What installing the plan's ``needed`` artifacts into ``target`` would change."""
    from fetchplan.commands._shared import install_summary_lines
    from fetchplan.install import InstallReport
    from fetchplan.install.preview import preview_changes, preview_install

    wanted = [(a.name, a.version) for a in needed.values()]
    new = args.venv is not None and not (args.venv / "pyvenv.cfg").is_file()
    if new:
        report = InstallReport(
            interpreter=target.executable,
            prefix=str(args.venv),
            projects=preview_changes(wanted, {}, reinstall=args.reinstall),
        )
    else:
        report = preview_install(wanted, target, reinstall=args.reinstall, exact=args.exact)
    if (getattr(args, "quiet", None) or 0) > 0:
        return 0
    if new:
        sys.stdout.write(f"Would create virtual environment at: {args.venv}\n")
    for line in install_summary_lines(report, 0.0, dry_run=True):
        sys.stdout.write(f"{line}\n")
    return 0


def _show_fetched(fetched: FetchResult, *, temporary: bool) -> None:
    """The fetch's summary; the manifest's path only when it stays."""
    from fetchplan.commands._shared import fetch_summary_lines

    for line in fetch_summary_lines(fetched):
        if not line.startswith("manifest: "):
            sys.stdout.write(f"{line}\n")
    if fetched.manifest_path is not None and not temporary:
        sys.stdout.write(f"manifest: {_shown(fetched.manifest_path)}\n")
    sys.stdout.flush()


def _run(args: argparse.Namespace, active: Path | None, *, temporary: bool) -> int:
    """:func:`run` once the plan's place is known; ``temporary``: it goes away afterwards.

    The stages and their overlap are :mod:`fetchplan.pipeline`'s; here are the arguments,
    what is printed between the stages, and the exit code."""
    from fetchplan import pipeline
    from fetchplan.commands._shared import (
        InstallProgressLine,
        enforce_plan_policy,
        install_summary_lines,
        refuse_removing_itself,
        reporter,
        sigterm_interrupts,
        using_line,
    )
    from fetchplan.commands.plan import options_from_args, resolve_with_status, resolved_line

    quiet = (getattr(args, "quiet", None) or 0) > 0
    options = options_from_args(args)
    plan_path: Path = options.output
    if str(plan_path) == "-":
        raise InputError("-o -: run fetches the plan it writes, so it needs a file name")
    seconds: list[float] = []

    def resolve(options: PlanOptions) -> PlanResult:
        result, took = resolve_with_status(options, quiet=quiet)
        seconds.append(took)
        return result

    find = _existing_interpreter if args.dry_run else _interpreter
    result, target = pipeline.plan_for(
        options,
        lambda: find(args, active),
        its_python=_plans_for_its_python(args, active),
        resolve=resolve,
    )
    pipeline.write_plan_files(plan_path, result, timings=args.timings)
    if not quiet:
        if active is not None:
            sys.stderr.write(f"{using_line(target)}\n")
        sys.stdout.write(f"{resolved_line(result.plan, seconds[0])}\n")
        sys.stdout.flush()
    if args.policy is not None:
        enforce_plan_policy(plan_path, args.policy)

    needed = pipeline.needed_artifacts(result.plan, plan_path, target)
    if args.dry_run:
        return _show_dry_run(args, needed, target)
    if args.exact:
        refuse_removing_itself(target, {a.name for a in needed.values()})
    # Piped, run writes its summaries only (as uv does); `--progress plain` asks for lines.
    mode = "none" if args.progress == "auto" and not sys.stderr.isatty() else args.progress
    shown = reporter(mode, quiet, sys.stderr)
    progress = InstallProgressLine(len(needed), enabled=not quiet)
    with (
        pipeline.Overlap(
            plan_path,
            needed,
            target,
            _install_options(args),
            on_wait=shown.note,
            progress=progress,
        ) as overlap,
        sigterm_interrupts(),
    ):
        fetched = overlap.fetch(_fetch_options(args), shown)
        if not quiet:
            _show_fetched(fetched, temporary=temporary)
        if fetched.interrupted:
            return 130
        if not fetched.ok:
            sys.stderr.write("fetchplan: nothing installed: some artifacts were not verified\n")
            return 1
        # The download bars are done: the line shows what staging has left, then the commit.
        # The time said is what installing took beyond the downloads it overlapped.
        started = time.monotonic()
        with progress:
            report = overlap.install(fetched)
    if not quiet:
        for line in install_summary_lines(report, time.monotonic() - started):
            sys.stdout.write(f"{line}\n")
    return 0
