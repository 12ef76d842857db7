"""What several commands share: the fetch's reporter, signals and summary; the install's
environment, progress line and summary.

``fetch``, ``bundle`` and ``run`` fetch; ``install`` and ``run`` install. Nothing here may
import the planner at module level (the bundle side never imports it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from fetchplan.errors import InputError

if TYPE_CHECKING:
    from fetchplan.commands._status import Change
    from fetchplan.executor.limits import TransferLimits
    from fetchplan.executor.progress import Reporter
    from fetchplan.executor.retry import RetryPolicy
    from fetchplan.executor.summary import FetchResult
    from fetchplan.install import InstallReport, TargetInterpreter

__all__ = [
    "InstallProgressLine",
    "active_environment",
    "discovered_venv",
    "enforce_plan_policy",
    "env_policies",
    "fetch_summary_lines",
    "install_summary_lines",
    "interpreter_cache",
    "note_on_stderr",
    "refuse_removing_itself",
    "reporter",
    "sigterm_interrupts",
    "using_line",
]


def interpreter_cache(args: argparse.Namespace) -> Path | None:
    """Where a target interpreter's description is cached: the cache root, unless
    --no-cache."""
    if getattr(args, "no_cache", False):
        return None
    given: Path | None = getattr(args, "cache_dir", None)
    if given is not None:
        return given
    from fetchplan.cache import default_cache_dir

    return default_cache_dir()


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the run like Ctrl-C: workers stop, the manifest is written."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def env_policies() -> tuple[RetryPolicy, TransferLimits]:
    """The retry policy and transfer limits, with ``FETCHPLAN_*`` environment overrides."""
    from fetchplan.executor.limits import TransferLimits
    from fetchplan.executor.retry import RetryPolicy

    try:
        return RetryPolicy().with_env(os.environ), TransferLimits().with_env(os.environ)
    except ValueError as exc:
        raise InputError(f"FETCHPLAN_* environment variable: {exc}") from exc


def enforce_plan_policy(plan_path: Path, policy_path: Path) -> None:
    """Raise ``PolicyViolationError`` listing every violation before anything is fetched."""
    from fetchplan.review.policy import PolicyViolationError, enforce_policy, load_policy
    from fetchplan.schemas.plan import load_plan

    policy = load_policy(policy_path)
    plan, _ = load_plan(plan_path)
    try:
        enforce_policy(plan, policy, str(plan_path))
    except PolicyViolationError as exc:
        for violation in exc.violations:
            sys.stderr.write(f"fetchplan: policy: {violation}\n")
        raise


def reporter(mode: str, quiet: bool, stream: TextIO) -> Reporter:
    from fetchplan.executor.reporters import BarReporter, LineReporter, NotesReporter

    if quiet or mode == "none":
        return NotesReporter(stream)
    if mode == "auto":
        mode = "bar" if stream.isatty() else "plain"
    if mode == "bar":
        from rich.console import Console

        return BarReporter(Console(file=stream))
    try:
        interval = float(os.environ.get("FETCHPLAN_PROGRESS_INTERVAL", "10"))
    except ValueError as exc:
        raise InputError(f"FETCHPLAN_PROGRESS_INTERVAL: {exc}") from exc
    return LineReporter(stream, interval=interval)


def fetch_summary_lines(result: FetchResult) -> list[str]:
    from rich.filesize import decimal

    from fetchplan.executor.reporters import format_rate

    summary = result.summary()
    files = summary["files"]
    sources = ", ".join(f"{files[k]} {k}" for k in ("downloaded", "resumed", "cache", "existing"))
    if files["mirror"]:
        sources += f", {files['mirror']} mirror"
    lines = [
        f"{len(result.verified)} verified ({sources}), {files['failed']} failed"
        + (f", {result.skipped} left to other shards" if result.skipped else ""),
        f"{decimal(summary['bytes'])} in place, {decimal(summary['network_bytes'])} received "
        f"in {summary['wall_seconds']:.1f}s ({format_rate(summary['throughput'])}), "
        f"{summary['retries']} retries",
    ]
    if result.resumed_bytes:
        lines[-1] += f", {decimal(result.resumed_bytes)} resumed from an earlier run"
    if result.manifest_path is not None:
        lines.append(f"manifest: {result.manifest_path}")
    return lines


def note_on_stderr(line: str) -> None:
    """A line the user must see now (a lock waited for), on stderr, for ``on_wait``."""
    sys.stderr.write(f"{line}\n")


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


def install_summary_lines(
    report: InstallReport, seconds: float, *, dry_run: bool = False
) -> list[str]:
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


def refuse_removing_itself(target: TargetInterpreter, listed: set[str]) -> None:
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
