"""``fetchplan install``: install the wheels of a verified manifest (or a bundle) into an
environment.

The command checks its arguments, finds the environment and prints; opening the source and
installing it (sdists built into wheels first) is :mod:`fetchplan.pipeline`'s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fetchplan.commands._args import add_link_mode_argument

if TYPE_CHECKING:
    from fetchplan.install import InstallReport
    from fetchplan.pipeline import InstallOptions, Source

__all__ = ["register", "run"]


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "install",
        parents=[common],
        help="install the wheels of a verified manifest or bundle",
        description=(
            "Install the wheels a verified manifest (written by `fetchplan fetch`) vouches for "
            "into a virtual environment or an interpreter. Every wheel is checked against the "
            "manifest and the plan, and for unsafe contents, before anything is written. A "
            "bundle (directory or tar, from `fetchplan bundle`) is verified whole first, as "
            "`fetchplan verify` does, and refused on any problem. With a "
            "plan for several targets, the artifacts of the target that best fits the "
            "interpreter are installed. An sdist (a project without a fitting wheel) is built "
            "first, offline, in an isolated environment of the plan's build dependencies; "
            "nothing is installed unless every build succeeds. Never uses the network. One "
            "install at a time per environment: another waits for it (or, with --no-wait, "
            "exits with status 75), and an install that was killed is finished or undone by "
            "the next one. Without --venv or --python, installs into the active virtual "
            "environment (VIRTUAL_ENV), else the nearest .venv here or above."
        ),
    )
    p.add_argument(
        "manifest",
        type=Path,
        metavar="SOURCE",
        help="a manifest.json, a fetch destination, or a bundle directory or tar",
    )
    p.add_argument(
        "--venv",
        type=Path,
        metavar="DIR",
        help="install into this virtual environment, created (without pip) if it does not exist",
    )
    p.add_argument(
        "--python",
        type=Path,
        metavar="PY",
        help="install into this interpreter's environment (with --venv: create the venv with it)",
    )
    p.add_argument(
        "--plan",
        type=Path,
        metavar="FILE",
        help="the plan the manifest was made from (default: the manifest's plan.path)",
    )
    p.add_argument(
        "--reinstall",
        action="store_true",
        help="reinstall projects already installed at the planned version",
    )
    p.add_argument(
        "--no-compile",
        dest="compile",
        action="store_false",
        help="do not byte-compile the installed modules",
    )
    add_link_mode_argument(p)
    p.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="the cache whose wheel store is filled and linked from (default: the user's)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="keep no unpacked wheels: unpack into a store that lasts for this install only",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="fail at once (exit status 75) if another fetchplan is installing into the "
        "environment, rather than waiting for it",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be installed, replaced, removed and left alone; change nothing",
    )
    p.add_argument(
        "--exact",
        action="store_true",
        help="also remove what the manifest does not list (as `uv pip sync` does), except "
        "pip, setuptools and wheel unless it lists them",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="accepted for symmetry with the other commands: installing never uses the network",
    )
    p.set_defaults(func=run)


def _dry_run(args: argparse.Namespace, source: Source, python: Path | None) -> InstallReport:
    """What installing would change, reading the manifest, the plan and the environment only.

    ``python`` is the environment's interpreter; None for a venv still to be made (which
    would get everything; the interpreter it would be made with is asked for its tags)."""
    from fetchplan.commands._shared import interpreter_cache
    from fetchplan.install import InstallReport, TargetInterpreter
    from fetchplan.install.preview import preview_changes, preview_install
    from fetchplan.install.selection import match_manifest
    from fetchplan.schemas.plan import BUILT_KINDS

    maker = args.python if args.python is not None else Path(sys.executable)
    target = TargetInterpreter.query(
        python if python is not None else maker, cache_dir=interpreter_cache(args)
    )
    selection = source.select(target)
    # The manifest must vouch for every wheel, as for a real install.
    match_manifest(
        [a for a in selection.artifacts if a.kind not in BUILT_KINDS],
        selection.manifest,
        source.manifest_path,
    )
    wanted = [(a.name, a.version) for a in selection.artifacts]
    if python is None:
        return InstallReport(
            interpreter=target.executable,
            prefix=str(args.venv),
            projects=preview_changes(wanted, {}, reinstall=args.reinstall),
        )
    return preview_install(wanted, target, reinstall=args.reinstall, exact=args.exact)


def _show_dry_run(args: argparse.Namespace, source: Source, chosen: Path | None) -> None:
    """``--dry-run``: say what installing would change, changing nothing."""
    from fetchplan.commands._shared import install_summary_lines
    from fetchplan.install import venv_python

    existing = chosen if chosen is not None else args.python
    if args.venv is not None:
        made = venv_python(args.venv)
        existing = made if (args.venv / "pyvenv.cfg").is_file() and made.exists() else None
    report = _dry_run(args, source, existing)
    if (getattr(args, "quiet", None) or 0) > 0:
        return
    if existing is None:
        sys.stdout.write(f"Would create virtual environment at: {args.venv}\n")
    for line in install_summary_lines(report, 0.0, dry_run=True):
        sys.stdout.write(f"{line}\n")


def _install_options(args: argparse.Namespace) -> InstallOptions:
    from fetchplan.install.store import WheelStore, default_store_dir
    from fetchplan.pipeline import InstallOptions

    return InstallOptions(
        reinstall=args.reinstall,
        compile=args.compile,
        wait=not args.no_wait,
        store=None if args.no_cache else WheelStore(default_store_dir(args.cache_dir)),
        link_mode=args.link_mode,
        exact=args.exact,
    )


def run(args: argparse.Namespace) -> int:
    from fetchplan.commands._shared import (
        InstallProgressLine,
        active_environment,
        install_summary_lines,
        interpreter_cache,
        note_on_stderr,
        refuse_removing_itself,
        using_line,
    )
    from fetchplan.install import TargetInterpreter, ensure_venv
    from fetchplan.pipeline import install_selection, open_source

    quiet = (getattr(args, "quiet", None) or 0) > 0
    active = args.venv is None and args.python is None
    chosen = active_environment("install") if active else None
    # A source that cannot be installed must not leave a new, empty venv behind: it is
    # opened and checked first.
    with open_source(args.manifest, plan_path=args.plan) as source:
        if args.dry_run:
            _show_dry_run(args, source, chosen)
            return 0
        if chosen is not None:
            python: Path = chosen
        elif args.venv is None:
            python = args.python
        else:
            python = ensure_venv(
                args.venv,
                python=args.python,
                wait=not args.no_wait,
                on_wait=None if quiet else note_on_stderr,
            )
        target = TargetInterpreter.query(python, cache_dir=interpreter_cache(args))
        if active and not quiet:
            sys.stderr.write(f"{using_line(target)}\n")
        selection = source.select(target)
        if args.exact:
            refuse_removing_itself(target, {a.name for a in selection.artifacts})
        started = time.monotonic()
        with InstallProgressLine(len(selection.artifacts), enabled=not quiet) as progress:
            report = install_selection(
                selection,
                target,
                _install_options(args),
                on_wait=progress.note,
                progress=progress,
                prebuilt=source.prebuilt(selection, target),
            )
        seconds = time.monotonic() - started
    if not quiet:
        for line in install_summary_lines(report, seconds):
            sys.stdout.write(f"{line}\n")
    return 0
