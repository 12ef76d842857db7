"""The library pipeline: plan -> fetch -> install, one call each, and the three overlapped.

This module only wires the stages together, as installer's ``_core.install`` does: the
planner (:mod:`fetchplan.planner`) resolves and writes a plan, the executor
(:mod:`fetchplan.executor`) fetches and verifies it, the builds (:mod:`fetchplan.build`) make
wheels of the sdists, the installer (:mod:`fetchplan.install`) installs verified wheels. It
never prints: the commands own output and exit codes, and are told what happens through a
reporter and callbacks.

* :func:`plan`, :func:`fetch`, :func:`install_from` — the three steps, each leaving its file
  (plan, verified manifest, installed environment);
* :func:`run` — all three, overlapped as ``fetchplan run`` does them: the environment is
  made (and its interpreter asked to describe itself) while the plan is resolved
  (:func:`plan_for`), and each wheel is verified and unpacked into staging inside the
  environment as soon as the executor verified it, while the other downloads go on
  (:class:`Overlap`). Nothing reaches the environment until every download is verified and
  every wheel staged: a failed download or a hostile wheel leaves it untouched.

The planner is imported only by the functions that plan: installing from a manifest or a
bundle (an offline machine) needs neither it nor its dependencies.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fetchplan.errors import InputError
from fetchplan.install import (
    InstallReport,
    LinkMode,
    TargetInterpreter,
    WheelStore,
    ensure_venv,
)
from fetchplan.install.core import InstallProgress, Selection, load_checked, select_checked

if TYPE_CHECKING:
    from fetchplan.executor import FetchOptions, FetchResult, Reporter
    from fetchplan.planner.api import PlanOptions, PlanResult
    from fetchplan.planner.timings import Timings
    from fetchplan.schemas.manifest import Manifest
    from fetchplan.schemas.plan import Plan

__all__ = [
    "InstallOptions",
    "Source",
    "fetch",
    "install_from",
    "install_selection",
    "open_source",
    "plan",
    "venv_target",
    "write_plan_files",
]

Resolve = Callable[["PlanOptions"], "PlanResult"]
"""Resolves plan options into a plan (the planner's ``make_plan``, or a command's wrapper
of it that shows progress)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class InstallOptions:
    """How to install: :class:`~fetchplan.install.StagedInstall`'s settings."""

    reinstall: bool = False
    """Reinstall projects installed at the planned version already."""
    compile: bool = True
    """Byte-compile the installed modules."""
    wait: bool = True
    """Wait for another fetchplan installing into the environment (else fail at once)."""
    link_mode: LinkMode = "auto"
    exact: bool = False
    """Also remove what the manifest does not list (installer tools apart)."""
    store: WheelStore | None = None
    """The wheel store to link from and fill; None: one for this install only."""


def venv_target(directory: Path, *, python: Path | None = None) -> TargetInterpreter:
    """The virtual environment at ``directory`` (made with ``python``, without pip, when
    missing), described by its interpreter."""
    return TargetInterpreter.query(ensure_venv(directory, python=python))


# --- the three steps ---------------------------------------------------------------------


def write_plan_files(plan_path: Path, result: PlanResult, *, timings: Path | None = None) -> None:
    """Write ``result``'s plan to ``plan_path`` (YAML when it ends in .yaml/.yml) and, given
    ``timings``, its timings there; :class:`InputError` naming the file that cannot be
    written."""
    from fetchplan.schemas import dump_document
    from fetchplan.schemas.plan import write_plan

    try:
        write_plan(plan_path, result.plan, output=True)
        if timings is not None:
            dump_document(timings, result.timings.to_dict(), "plan-timings", output=True)
    except OSError as exc:
        raise InputError(f"{exc.filename or plan_path}: cannot write: {exc.strerror}") from exc


def plan(options: PlanOptions, *, timings: Timings | None = None) -> PlanResult:
    """Resolve ``options``' requirements and write the plan to ``options.output``.

    Nothing is downloaded but index pages and metadata. Returns the plan and where the time
    went (``timings``, when given, is filled as the resolution goes, for a progress line).
    """
    from fetchplan.planner.api import make_plan

    result = make_plan(options, timings=timings)
    write_plan_files(options.output, result)
    return result


def fetch(
    plan_path: Path, options: FetchOptions | None = None, reporter: Reporter | None = None
) -> FetchResult:
    """Fetch and verify every artifact of the plan at ``plan_path``, writing the verified
    manifest beside the files; see :func:`fetchplan.executor.execute_plan`. The result says
    what failed (``ok`` is False then) and where the manifest is (``manifest_path``)."""
    from fetchplan.executor import execute_plan

    return execute_plan(plan_path, options, reporter)


@dataclass(frozen=True, kw_only=True, slots=True)
class Source:
    """A verified manifest, or a bundle checked whole, and the plan it was made from."""

    manifest_path: Path
    manifest: Manifest
    plan: Plan
    plan_path: Path

    def select(self, target: TargetInterpreter) -> Selection:
        """The plan target and artifacts ``target`` needs."""
        checked = (self.manifest, self.plan, self.plan_path)
        return select_checked(self.manifest_path, target, checked=checked)


@contextmanager
def open_source(source: Path, *, plan_path: Path | None = None) -> Iterator[Source]:
    """Open a manifest, a fetch destination, or a bundle directory or tar, for the block.

    A bundle is verified whole first (:func:`fetchplan.bundle.check_bundle`) and refused on
    any problem (:class:`~fetchplan.bundle.BundleInvalid`); a tar is extracted for the block.
    The manifest and its plan (``plan_path``, else the manifest's) are read, schema-checked
    and must belong together (:func:`~fetchplan.install.core.load_checked`).
    """
    from fetchplan.bundle import BundleInvalid, check_bundle, open_bundle

    with open_bundle(source) as opened:
        if opened.is_bundle:
            whole = check_bundle(opened)
            if whole.problems:
                raise BundleInvalid(whole.where, whole.problems)
        manifest, plan_, plan_file = load_checked(opened.manifest_path, plan_path=plan_path)
        yield Source(
            manifest_path=opened.manifest_path, manifest=manifest, plan=plan_, plan_path=plan_file
        )


def install_selection(
    selection: Selection,
    target: TargetInterpreter,
    options: InstallOptions = InstallOptions(),
    *,
    on_wait: Callable[[str], None] | None = None,
    progress: InstallProgress | None = None,
) -> InstallReport:
    """Build the sdists of ``selection`` into wheels, then install every wheel into
    ``target``, all or nothing: nothing is installed unless every build succeeded.

    ``on_wait`` is told when another install holds the environment; ``progress`` is told of
    each wheel as it is staged.
    """
    from fetchplan.build.sdists import build_sdists
    from fetchplan.install import install_wheels
    from fetchplan.install.core import selected_wheels

    with tempfile.TemporaryDirectory(prefix="fetchplan-built-") as built_dir:
        built = build_sdists(selection, target, out_dir=Path(built_dir))
        return install_wheels(
            selected_wheels(selection, built),
            target,
            reinstall=options.reinstall,
            compile=options.compile,
            wait=options.wait,
            on_wait=on_wait,
            store=options.store,
            link_mode=options.link_mode,
            exact=options.exact,
            progress=progress,
        )


def install_from(
    source: Path,
    target: TargetInterpreter,
    options: InstallOptions = InstallOptions(),
    *,
    plan_path: Path | None = None,
    on_wait: Callable[[str], None] | None = None,
    progress: InstallProgress | None = None,
) -> InstallReport:
    """Install into ``target`` what it needs of a verified manifest, a fetch destination or
    a bundle (what ``fetchplan install SOURCE`` does), building its sdists first, offline.

    See :func:`open_source` for what is checked about the source and :func:`install_selection`
    for the install. Never uses the network.
    """
    with open_source(source, plan_path=plan_path) as opened:
        return install_selection(
            opened.select(target), target, options, on_wait=on_wait, progress=progress
        )
