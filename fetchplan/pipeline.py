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

import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from fetchplan.errors import InputError
from fetchplan.install import (
    InstallReport,
    LinkMode,
    StagedInstall,
    TargetInterpreter,
    WheelStore,
    ensure_venv,
)
from fetchplan.install.core import InstallProgress, Selection, load_checked, select_checked
from fetchplan.schemas.plan import BUILT_KINDS, SOURCE_TREE_KINDS

if TYPE_CHECKING:
    from fetchplan.bundle import BundleResult
    from fetchplan.bundle.provenance import Getter
    from fetchplan.executor import FetchOptions, FetchResult, Reporter, Verified
    from fetchplan.planner.api import PlanOptions, PlanResult
    from fetchplan.planner.timings import Timings
    from fetchplan.schemas.bundle import BuiltRef
    from fetchplan.schemas.manifest import Manifest
    from fetchplan.schemas.plan import Artifact, Plan
    from fetchplan.wheels import WheelToInstall

__all__ = [
    "InstallOptions",
    "Overlap",
    "RunResult",
    "Source",
    "build_local_wheels",
    "bundle",
    "fetch",
    "install_from",
    "install_selection",
    "needed_artifacts",
    "open_source",
    "plan",
    "plan_for",
    "run",
    "venv_target",
    "write_plan_files",
]

"""The artifact kinds ``bundle --build-local`` builds wheels of: local projects and commits."""

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
    root: Path | None = None
    """The bundle's root (None for a manifest or fetch destination)."""
    built: tuple[BuiltRef, ...] = ()
    """The wheels a bundle carries built from its source trees (``bundle --build-local``)."""

    def select(self, target: TargetInterpreter) -> Selection:
        """The plan target and artifacts ``target`` needs."""
        checked = (self.manifest, self.plan, self.plan_path)
        return select_checked(self.manifest_path, target, checked=checked)

    def prebuilt(
        self, selection: Selection, target: TargetInterpreter
    ) -> dict[str, WheelToInstall]:
        """The carried wheels ``selection`` may install instead of building, by the file name
        of the source-tree archive each was built from: only one built from the very archive
        the manifest verified (its sha256), whose tags fit ``target``, with the artifact's
        name and version. The bundle was checked whole, their hashes with it."""
        if self.root is None or not self.built:
            return {}
        verified = {e.filename: e.sha256 for e in self.manifest.artifacts}
        trees = {a.filename: a for a in selection.sdists if a.kind in SOURCE_TREE_KINDS}
        usable: dict[str, WheelToInstall] = {}
        for ref in self.built:
            artifact = trees.get(ref.artifact)
            # (The bundle check already held the manifest's sha256 to the plan's.)
            if artifact is None or verified.get(ref.artifact) != ref.source_sha256:
                continue
            wheel = _carried_wheel(self.root, ref, artifact, target)
            if wheel is not None:
                usable[ref.artifact] = wheel
        return usable


def _carried_wheel(
    root: Path, ref: BuiltRef, artifact: Artifact, target: TargetInterpreter
) -> WheelToInstall | None:
    """The carried wheel ``ref`` as one to install for ``artifact``, when it is a wheel of
    that project and version whose tags ``target`` supports; else None."""
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    from fetchplan.install.selection import direct_url_json
    from fetchplan.wheels import WheelToInstall

    try:
        name, version, _build, tags = parse_wheel_filename(ref.filename)
        same = canonicalize_name(name) == artifact.name and version == Version(artifact.version)
    except (InvalidWheelFilename, InvalidVersion):
        return None
    if not same or not {str(t) for t in tags} & set(target.tags):
        return None
    return WheelToInstall(
        path=root / ref.path,
        filename=ref.filename,
        name=artifact.name,
        version=artifact.version,
        sha256=ref.sha256,
        size=ref.size,
        requested=artifact.requested,
        direct_url=direct_url_json(artifact),
    )


@contextmanager
def open_source(source: Path, *, plan_path: Path | None = None) -> Iterator[Source]:
    """Open a manifest, a fetch destination, or a bundle directory or tar, for the block.

    A bundle is verified whole first (:func:`fetchplan.bundle.check_bundle`) and refused on
    any problem (:class:`~fetchplan.bundle.BundleInvalid`); a tar is extracted for the block.
    The manifest and its plan (``plan_path``, else the manifest's) are read, schema-checked
    and must belong together (:func:`~fetchplan.install.core.load_checked`).
    """
    from fetchplan.bundle import BundleInvalid, check_bundle, open_bundle
    from fetchplan.bundle.layout import BUNDLE_FILE
    from fetchplan.schemas.bundle import load_bundle

    with open_bundle(source) as opened:
        root = None
        built: tuple[BuiltRef, ...] = ()
        if opened.is_bundle:
            whole = check_bundle(opened)
            if whole.problems:
                raise BundleInvalid(whole.where, whole.problems)
            root = opened.root
            built = load_bundle(root / BUNDLE_FILE).built
        manifest, plan_, plan_file = load_checked(opened.manifest_path, plan_path=plan_path)
        yield Source(
            manifest_path=opened.manifest_path,
            manifest=manifest,
            plan=plan_,
            plan_path=plan_file,
            root=root,
            built=built,
        )


def install_selection(
    selection: Selection,
    target: TargetInterpreter,
    options: InstallOptions = InstallOptions(),
    *,
    on_wait: Callable[[str], None] | None = None,
    progress: InstallProgress | None = None,
    prebuilt: Mapping[str, WheelToInstall] | None = None,
) -> InstallReport:
    """Check the wheels of ``selection`` against its manifest, build its sdists into wheels,
    then install every wheel into ``target``, all or nothing: nothing is installed unless
    every build succeeded.

    ``on_wait`` is told when another install holds the environment; ``progress`` is told of
    each wheel as it is staged. ``prebuilt`` are wheels to install instead of building the
    sdists they name (by the sdist's file name; see :meth:`Source.prebuilt`).
    """
    from fetchplan.build.sdists import build_sdists
    from fetchplan.install import install_wheels
    from fetchplan.install.core import selected_wheels

    with tempfile.TemporaryDirectory(prefix="fetchplan-built-") as built_dir:
        carried = dict(prebuilt or {})

        def build(selection: Selection) -> dict[str, WheelToInstall]:
            rest = tuple(a for a in selection.artifacts if a.filename not in carried)
            built = build_sdists(
                replace(selection, artifacts=rest), target, out_dir=Path(built_dir)
            )
            return {**built, **carried}

        return install_wheels(
            selected_wheels(selection, build),
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
        selection = opened.select(target)
        return install_selection(
            selection,
            target,
            options,
            on_wait=on_wait,
            progress=progress,
            prebuilt=opened.prebuilt(selection, target),
        )


# --- bundles -----------------------------------------------------------------------------


def bundle(
    plan_path: Path,
    output: Path,
    options: FetchOptions | None = None,
    reporter: Reporter | None = None,
    provenance: Getter | None = None,
    *,
    build_local: TargetInterpreter | None = None,
) -> BundleResult:
    """Make the bundle ``output`` of the plan at ``plan_path`` (see
    :func:`fetchplan.bundle.make_bundle`); with ``build_local``, it also carries the wheels
    of the plan's local directory and VCS artifacts, built for that interpreter from the
    verified archives (:func:`build_local_wheels`), beside those archives.

    A plan with an editable is refused with ``build_local`` (:class:`InputError`, before
    anything is fetched): an editable installs from the user's directory, never a bundle.
    """
    from fetchplan.bundle import make_bundle

    builder = None
    if build_local is not None:
        _refuse_editables(plan_path)
        interpreter = build_local

        def builder(work: Path) -> tuple[BuiltRef, ...]:
            return build_local_wheels(work, interpreter)

    return make_bundle(plan_path, output, options, reporter, provenance, build_local=builder)


def _refuse_editables(plan_path: Path) -> None:
    from fetchplan.schemas.plan import load_plan

    plan_, _ = load_plan(plan_path)
    editables = [a.filename for a in plan_.artifacts if a.editable]
    if editables:
        raise InputError(
            f"{plan_path}: artifacts: {', '.join(editables)}: an editable installs from its "
            "directory, --build-local cannot carry it"
        )


def build_local_wheels(work: Path, target: TargetInterpreter) -> tuple[BuiltRef, ...]:
    """Build, for ``target``, a wheel of each directory and VCS artifact it needs of the
    fetch destination ``work`` (a bundle being made: its ``manifest.json``), from the
    verified archive and the plan's build dependencies (:func:`build_sdists`), into
    ``work/built/``; describe each for ``bundle.json``."""
    from fetchplan.build.sdists import build_sdists
    from fetchplan.bundle.layout import BUILT_DIR, MANIFEST_FILE, built_path
    from fetchplan.schemas.bundle import BuiltRef

    selection = select_checked(work / MANIFEST_FILE, target)
    trees = tuple(a for a in selection.artifacts if a.kind in SOURCE_TREE_KINDS)
    if not trees:
        return ()
    out_dir = work / BUILT_DIR
    out_dir.mkdir(exist_ok=True)
    built = build_sdists(replace(selection, artifacts=trees), target, out_dir=out_dir)
    verified = {e.filename: e.sha256 for e in selection.manifest.artifacts}
    return tuple(
        BuiltRef(
            artifact=a.filename,
            filename=built[a.filename].filename,
            path=built_path(built[a.filename].filename),
            sha256=built[a.filename].sha256,
            size=built[a.filename].size,
            source_sha256=verified[a.filename],
        )
        for a in trees
    )


# --- the three overlapped ----------------------------------------------------------------


def _full_python_version(interpreter: TargetInterpreter) -> str:
    """The interpreter's ``X.Y.Z`` (from its ``python_full_version`` marker), else ``X.Y``."""
    found = re.match(r"\d+\.\d+\.\d+", interpreter.markers.get("python_full_version", ""))
    return found.group(0) if found else interpreter.python_version


def _load_fetch_and_install() -> None:
    """Import the executor and build the validators its files need (tens of milliseconds of
    CPU) while the planner mostly waits on the network."""
    import fetchplan.executor  # noqa: F401
    from fetchplan.schemas import prepare_validator

    for name in ("plan", "checkpoint", "manifest", "fetch-timings"):
        prepare_validator(name)


def plan_for(
    options: PlanOptions,
    interpreter: Callable[[], TargetInterpreter],
    *,
    its_python: bool = False,
    resolve: Resolve | None = None,
) -> tuple[PlanResult, TargetInterpreter]:
    """Resolve ``options`` while ``interpreter`` makes (or finds) the environment and asks
    its interpreter to describe itself; return the result (not written) and the interpreter.

    With ``its_python`` the plan is for that interpreter's Python version, to the micro
    release (Requires-Python >=3.11.5 must see 3.11.7, not 3.11), so resolving waits for it.
    ``resolve`` is the planner's ``make_plan`` unless given.
    """
    if resolve is None:
        from fetchplan.planner.api import make_plan

        resolve = make_plan
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fetchplan-venv") as pool:
        described = pool.submit(interpreter)
        loaded = pool.submit(_load_fetch_and_install)
        if its_python:
            options = replace(options, python_version=_full_python_version(described.result()))
        result = resolve(options)
        target = described.result()
        loaded.result()
    return result, target


def needed_artifacts(plan: Plan, plan_path: Path, target: TargetInterpreter) -> dict[str, Artifact]:
    """The artifacts of the plan target that fits ``target``, by destination."""
    from fetchplan.install.selection import select_artifacts, select_target

    plan_target = select_target(plan, plan_path, target.markers, target.tags)
    return {a.destination: a for a in select_artifacts(plan, plan_path, plan_target, target.tags)}


class Overlap:
    """Fetching a plan while each verified wheel is staged into one environment, then
    installing it all at once: ``with Overlap(...) as o: o.install(o.fetch(...))``.

    ``needed`` are the plan's artifacts the environment's interpreter needs
    (:func:`needed_artifacts`). From the start of the block the environment is locked (see
    :class:`~fetchplan.install.StagedInstall`, which ``options``, ``on_wait`` and
    ``progress`` go to); leaving the block without :meth:`install` writes nothing to it.
    """

    def __init__(
        self,
        plan_path: Path,
        needed: Mapping[str, Artifact],
        target: TargetInterpreter,
        options: InstallOptions = InstallOptions(),
        *,
        on_wait: Callable[[str], None] | None = None,
        progress: InstallProgress | None = None,
    ) -> None:
        self._plan_path = plan_path
        self._needed = needed
        self._target = target
        self._options = options
        self._on_wait = on_wait
        self._progress = progress
        self._stack = ExitStack()
        self._built = Path()
        self._staged: StagedInstall | None = None

    def __enter__(self) -> Overlap:
        with ExitStack() as stack:
            self._built = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="fetchplan-built-"))
            )
            options = self._options
            self._staged = stack.enter_context(
                StagedInstall(
                    self._target,
                    reinstall=options.reinstall,
                    compile=options.compile,
                    wait=options.wait,
                    on_wait=self._on_wait,
                    store=options.store,
                    link_mode=options.link_mode,
                    exact=options.exact,
                    progress=self._progress,
                )
            )
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    @property
    def _install(self) -> StagedInstall:
        if self._staged is None:
            raise RuntimeError("Overlap used outside its with block")
        return self._staged

    def fetch(self, options: FetchOptions, reporter: Reporter) -> FetchResult:
        """Fetch the plan; each wheel is staged as soon as it is verified (a large one is
        unpacked while it downloads, staging checking every file). sdists wait for
        :meth:`install`."""
        from fetchplan.executor import open_execution

        execution = open_execution(self._plan_path, options, reporter)
        with execution:
            self._prestage_large(execution.partial_path, execution.final_path)
            for verified in execution:
                self._stage(verified)
        if execution.result is None:  # pragma: no cover - the execution always sets it on exit
            raise RuntimeError("execution produced no result")
        return execution.result

    def _prestage_large(
        self, partial: Callable[[Artifact], Path], final: Callable[[Artifact], Path]
    ) -> None:
        from fetchplan.install.prestage import prestage_min_size

        smallest = prestage_min_size()
        for large in self._needed.values():
            if large.kind == "wheel" and (large.size or 0) >= smallest:
                self._install.prestage(
                    filename=large.filename,
                    name=large.name,
                    size=large.size or 0,
                    partial=partial(large),
                    final=final(large),
                    sha256=large.sha256,
                )

    def _stage(self, verified: Verified) -> None:
        from fetchplan.install.selection import direct_url_json
        from fetchplan.wheels import WheelToInstall

        artifact = self._needed.get(verified.artifact.destination)
        if artifact is None or artifact.kind in BUILT_KINDS:
            return  # not needed here, or built once everything is verified
        self._install.add(
            WheelToInstall(
                path=verified.path,
                filename=artifact.filename,
                name=artifact.name,
                version=artifact.version,
                sha256=verified.sha256,
                size=verified.size,
                requested=artifact.requested,
                direct_url=direct_url_json(artifact),
            )
        )

    def install(self, fetched: FetchResult) -> InstallReport:
        """Build the sdists (from the verified manifest ``fetched`` wrote), stage their
        wheels, and put everything in place in one transaction. Only after a fetch that
        verified every artifact."""
        if any(a.kind in BUILT_KINDS for a in self._needed.values()) and fetched.manifest_path:
            from fetchplan.build.sdists import build_manifest_sdists

            for wheel in build_manifest_sdists(
                fetched.manifest_path,
                self._target,
                out_dir=self._built,
                plan_path=self._plan_path,
            ):
                self._install.add(wheel)
        return self._install.commit()


@dataclass(frozen=True, kw_only=True, slots=True)
class RunResult:
    """What :func:`run` did: the plan, the fetch, and the install (None when the fetch did
    not verify every artifact, or was interrupted: nothing was installed then)."""

    planned: PlanResult
    fetched: FetchResult
    installed: InstallReport | None

    @property
    def ok(self) -> bool:
        return self.installed is not None


def run(
    options: PlanOptions,
    target: TargetInterpreter,
    *,
    fetch_options: FetchOptions | None = None,
    install_options: InstallOptions = InstallOptions(),
    reporter: Reporter | None = None,
) -> RunResult:
    """Plan ``options`` (the plan written to ``options.output``), fetch it and install what
    ``target`` needs of it, overlapped as :class:`Overlap` does: ``fetchplan run`` as a call.

    Nothing is installed unless every artifact was verified; the result says so.
    """
    from fetchplan.executor import FetchOptions, NullReporter

    planned = plan(options)
    needed = needed_artifacts(planned.plan, options.output, target)
    with Overlap(options.output, needed, target, install_options) as overlap:
        fetched = overlap.fetch(
            fetch_options if fetch_options is not None else FetchOptions(),
            reporter if reporter is not None else NullReporter(),
        )
        installed = None
        if fetched.ok and not fetched.interrupted:
            installed = overlap.install(fetched)
    return RunResult(planned=planned, fetched=fetched, installed=installed)
