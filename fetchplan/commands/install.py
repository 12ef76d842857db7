"""``fetchplan install``: install the wheels of a verified manifest (or a bundle) into an
environment.

sdists in it are built into wheels first (:mod:`fetchplan.install.build`).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fetchplan.commands._args import add_link_mode_argument
from fetchplan.errors import InputError

if TYPE_CHECKING:
    from fetchplan.commands._status import Change
    from fetchplan.install import InstallReport, TargetInterpreter
    from fetchplan.schemas.manifest import Manifest
    from fetchplan.schemas.plan import Plan

__all__ = [
    "InstallProgressLine",
    "active_environment",
    "discovered_venv",
    "register",
    "run",
    "summary_lines",
    "using_line",
]


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


def active_environment(command: str) -> Path:
    """The interpreter of the environment uv would pick when given none: the active virtual
    environment (``VIRTUAL_ENV``), else a ``.venv`` in the current directory or a parent;
    :class:`InputError` when there is neither or it has no interpreter."""
    from fetchplan.install import venv_python

    active = os.environ.get("VIRTUAL_ENV")
    if not active:
        found = discovered_venv(Path.cwd())
        if found is None:
            raise InputError(
                f"{command}: give the environment with --venv DIR or --python PY (or "
                "activate a virtual environment)"
            )
        return venv_python(found)
    python = venv_python(Path(active))
    if not python.exists():
        raise InputError(f"VIRTUAL_ENV: {active}: no interpreter at {python}")
    return python


def discovered_venv(start: Path) -> Path | None:
    """The nearest ``.venv`` at or above ``start`` that is a virtual environment with an
    interpreter, as uv looks for one (a ``.venv`` that is a file or lacks ``pyvenv.cfg`` is
    passed over, so a stray name never receives an install)."""
    from fetchplan.install import venv_python

    for directory in (start, *start.parents):
        candidate = directory / ".venv"
        if (candidate / "pyvenv.cfg").is_file() and venv_python(candidate).exists():
            return candidate
    return None


def using_line(target: TargetInterpreter) -> str:
    """uv's ``Using Python 3.12.4 environment at: DIR``, for the environment found through
    ``VIRTUAL_ENV`` or a ``.venv`` (given none, the user is told which one is used)."""
    version = target.markers.get("python_full_version") or target.python_version
    active = os.environ.get("VIRTUAL_ENV")
    if active:
        return f"Using Python {version} environment at: {active} (VIRTUAL_ENV)"
    found = discovered_venv(Path.cwd())
    where = found if found is not None else target.prefix
    return f"Using Python {version} environment at: {where} (.venv)"


def _changes(report: InstallReport) -> list[Change]:
    """Every change ``report`` records, as ``(sign, name, version)``."""
    changes: list[Change] = []
    for project in report.projects:
        if project.action == "unchanged":
            continue
        if project.action == "reinstalled":
            changes.append(("~", project.name, project.version))
            continue
        changes.extend(("-", project.name, old) for old in project.previous)
        if project.action != "removed":
            changes.append(("+", project.name, project.version))
    return changes


def summary_lines(report: InstallReport, seconds: float, *, dry_run: bool = False) -> list[str]:
    """uv's summary of an install: how many were uninstalled and installed, then one
    `` + name==version`` (`` - name==old`` removed, `` ~ name==version`` reinstalled) line per
    change, sorted by name. ``Audited N packages`` when nothing changed. With ``dry_run``,
    what would be (and what would be left alone, as `` = name==version``)."""
    from fetchplan.commands._status import change_lines, elapsed, packages

    uninstalled = sum(1 for p in report.projects if p.action != "unchanged" and p.previous)
    installed = sum(1 for p in report.projects if p.action not in ("unchanged", "removed"))
    unchanged = [p for p in report.projects if p.action == "unchanged"]
    lines: list[str] = []
    if dry_run:
        if uninstalled:
            lines.append(f"Would uninstall {packages(uninstalled)}")
        if installed:
            lines.append(f"Would install {packages(installed)}")
        lines.extend(change_lines(_changes(report)))
        if unchanged:
            lines.append(f"Would leave {packages(len(unchanged))} as installed")
            lines.extend(sorted(f" = {p.name}=={p.version}" for p in unchanged))
        if not report.projects:
            lines.append("Would make no changes")
        return lines
    if not (uninstalled or installed):
        return [f"Audited {packages(len(report.projects))} in {elapsed(seconds)}"]
    if uninstalled:
        lines.append(f"Uninstalled {packages(uninstalled)}")
    if installed:
        lines.append(f"Installed {packages(installed)} in {elapsed(seconds)}")
    lines.extend(change_lines(_changes(report)))
    return lines


class InstallProgressLine:
    """A live ``installing 12/34 pandas`` line on a terminal while a block installs; call the
    object (from any thread) with each project's name as its wheel is staged."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        from fetchplan.commands._status import LiveLine

        self._total = total
        self._done = 0
        self._last = ""
        self._lock = threading.Lock()
        self._line = LiveLine(sys.stderr, self._render, enabled=enabled and total > 0)

    def _render(self) -> str:
        with self._lock:
            return f"installing {self._done}/{self._total} {self._last}".rstrip()

    def __call__(self, name: str) -> None:
        with self._lock:  # the installer's workers call this at once
            self._done += 1
            self._last = name

    def note(self, message: str) -> None:
        """A line the user must see (a lock waited for), in the live line's place."""
        self._line.write(f"fetchplan: {message}\n")

    def __enter__(self) -> InstallProgressLine:
        self._line.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._line.__exit__(None, None, None)


def _dry_run(
    args: argparse.Namespace,
    manifest_path: Path,
    checked: tuple[Manifest, Plan, Path],
    python: Path | None,
) -> InstallReport:
    """What installing would change, reading the manifest, the plan and the environment only.

    ``python`` is the environment's interpreter; None for a venv still to be made (which
    would get everything; the interpreter it would be made with is asked for its tags)."""
    from fetchplan.install import InstallReport, TargetInterpreter
    from fetchplan.install.core import select_checked
    from fetchplan.install.preview import preview_changes, preview_install
    from fetchplan.install.selection import match_manifest

    maker = args.python if args.python is not None else Path(sys.executable)
    target = TargetInterpreter.query(python if python is not None else maker)
    selection = select_checked(manifest_path, target, plan_path=args.plan, checked=checked)
    # The manifest must vouch for every wheel, as for a real install.
    match_manifest(
        [a for a in selection.artifacts if a.kind != "sdist"], selection.manifest, manifest_path
    )
    wanted = [(a.name, a.version) for a in selection.artifacts]
    if python is None:
        return InstallReport(
            interpreter=target.executable,
            prefix=str(args.venv),
            projects=preview_changes(wanted, {}, reinstall=args.reinstall),
        )
    return preview_install(wanted, target, reinstall=args.reinstall, exact=args.exact)


def _refuse_removing_itself(target: TargetInterpreter, listed: set[str]) -> None:
    """``--exact`` into the environment fetchplan runs from must not remove fetchplan."""
    from fetchplan.install.environment import installed_distributions

    if os.path.realpath(target.prefix) != os.path.realpath(sys.prefix):
        return
    if "fetchplan" in installed_distributions(target) and "fetchplan" not in listed:
        raise InputError(
            f"--exact: {target.prefix} is the environment fetchplan runs from, and the "
            "manifest does not list fetchplan: it would remove itself; install into another "
            "environment"
        )


def _say(line: str) -> None:
    sys.stderr.write(f"{line}\n")


def run(args: argparse.Namespace) -> int:
    from fetchplan.bundle import BundleInvalid, check_bundle, open_bundle
    from fetchplan.install import TargetInterpreter, ensure_venv, install_manifest, venv_python
    from fetchplan.install.core import load_checked, select_checked
    from fetchplan.install.store import WheelStore, default_store_dir

    quiet = (getattr(args, "quiet", None) or 0) > 0
    active = args.venv is None and args.python is None
    chosen = active_environment("install") if active else None
    with open_bundle(args.manifest) as source:
        if source.is_bundle:
            whole = check_bundle(source)
            if whole.problems:
                raise BundleInvalid(whole.where, whole.problems)
        # A manifest that cannot be installed must not leave a new, empty venv behind.
        checked = load_checked(source.manifest_path, plan_path=args.plan)
        if args.dry_run:
            existing = chosen if chosen is not None else args.python
            if args.venv is not None:
                made = venv_python(args.venv)
                existing = made if (args.venv / "pyvenv.cfg").is_file() and made.exists() else None
            report = _dry_run(args, source.manifest_path, checked, existing)
            if not quiet:
                if existing is None:
                    sys.stdout.write(f"Would create virtual environment at: {args.venv}\n")
                for line in summary_lines(report, 0.0, dry_run=True):
                    sys.stdout.write(f"{line}\n")
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
                on_wait=None if quiet else _say,
            )
        target = TargetInterpreter.query(python)
        if active and not quiet:
            sys.stderr.write(f"{using_line(target)}\n")
        selected = select_checked(source.manifest_path, target, checked=checked).artifacts
        if args.exact:
            _refuse_removing_itself(target, {a.name for a in selected})
        started = time.monotonic()
        with InstallProgressLine(len(selected), enabled=not quiet) as progress:
            report = install_manifest(
                source.manifest_path,
                target,
                plan_path=args.plan,
                reinstall=args.reinstall,
                compile=args.compile,
                checked=checked,
                wait=not args.no_wait,
                on_wait=progress.note,
                store=None if args.no_cache else WheelStore(default_store_dir(args.cache_dir)),
                link_mode=args.link_mode,
                exact=args.exact,
                progress=progress,
            )
        seconds = time.monotonic() - started
    if not quiet:
        for line in summary_lines(report, seconds):
            sys.stdout.write(f"{line}\n")
    return 0
