"""Installing a verified manifest, or a list of wheels, into a target interpreter.

The order is what keeps the environment whole: every wheel is verified and unpacked into the
wheel store (once: a wheel already stored is not read at all), then linked from there into
staging (in parallel, one wheel per worker); only when all succeeded are old versions removed
and the staged files renamed into place; then the new modules are byte-compiled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from fetchplan.install.bytecode import compile_files
from fetchplan.install.environment import (
    InstalledDist,
    check_destinations,
    installed_distributions,
)
from fetchplan.install.errors import InstallError, ManifestMismatch, UnsafeWheel
from fetchplan.install.interpreter import TargetInterpreter
from fetchplan.install.link import Linker, LinkMode
from fetchplan.install.prestage import Prestager
from fetchplan.install.protect import STAGING_PREFIX, Protected, check_wheel
from fetchplan.install.selection import (
    WheelToInstall,
    match_manifest,
    select_artifacts,
    select_target,
)
from fetchplan.install.staging import StagedWheel, link_wheel
from fetchplan.install.store import StoreEntry, WheelStore
from fetchplan.install.transaction import Recovered, Transaction, environment_lock
from fetchplan.install.wheel import open_wheel
from fetchplan.schemas import plan_digest
from fetchplan.schemas.manifest import Manifest, load_manifest
from fetchplan.schemas.plan import BUILT_KINDS, Artifact, Plan, Target, load_plan

__all__ = [
    "INSTALLER_TOOLS",
    "Action",
    "InstallProgress",
    "InstallReport",
    "ProjectOutcome",
    "SdistBuilder",
    "Selection",
    "StagedInstall",
    "install_manifest",
    "install_wheels",
    "load_checked",
    "select_checked",
    "selected_wheels",
    "wheels_for_interpreter",
]

log = logging.getLogger(__name__)

Action = Literal["installed", "replaced", "reinstalled", "unchanged", "removed"]

InstallProgress = Callable[[str], None]
"""Called with a project's name once its wheel is verified and staged, or found installed
already (from the installer's worker threads)."""

INSTALLER_TOOLS: frozenset[str] = frozenset({"pip", "setuptools", "wheel"})
"""What an exact install leaves in place unless the manifest lists it: the seed packages
``uv pip sync`` preserves, which the environment's own tooling needs."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ProjectOutcome:
    name: str
    version: str
    action: Action
    previous: tuple[str, ...] = ()
    """Versions removed to make room (for ``replaced`` and ``reinstalled``); for ``removed``,
    every version removed (``version`` is the first)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class InstallReport:
    """What an install did, per project, in the order the wheels were given (then the
    projects an exact install removed)."""

    interpreter: str
    prefix: str
    projects: tuple[ProjectOutcome, ...]
    compiled: int = 0
    placed: dict[str, int] = field(default_factory=dict)
    """Files placed from the wheel store, by method (``clone``, ``hardlink``, ``copy``...)."""

    def count(self, action: Action) -> int:
        return sum(1 for p in self.projects if p.action == action)


def load_checked(
    manifest_path: Path, *, plan_path: Path | None = None
) -> tuple[Manifest, Plan, Path]:
    """Read and schema-check the manifest and its plan, and check they belong together.

    The plan is ``plan_path``, else the manifest's ``plan.path``; its digest must be the
    manifest's ``plan.sha256``. Returns the manifest, the plan and the plan's path.
    """
    manifest = load_manifest(manifest_path)
    plan_file = plan_path if plan_path is not None else manifest_path.parent / manifest.plan.path
    plan, document = load_plan(plan_file)
    digest = plan_digest(document)
    if digest != manifest.plan.sha256:
        raise ManifestMismatch(
            f"{manifest_path}: plan.sha256: {manifest.plan.sha256} is not the digest of "
            f"{plan_file} ({digest}): the manifest was made for another plan"
        )
    return manifest, plan, plan_file


@dataclass(frozen=True, kw_only=True, slots=True)
class Selection:
    """A checked manifest and plan, with the plan target and artifacts one interpreter needs."""

    manifest: Manifest
    manifest_path: Path
    plan: Plan
    plan_path: Path
    target: Target
    artifacts: tuple[Artifact, ...]

    @property
    def sdists(self) -> list[Artifact]:
        """The selected artifacts to build (sdists, source trees; editables too), in plan
        order."""
        return [a for a in self.artifacts if a.kind in BUILT_KINDS]


def select_checked(
    manifest_path: Path,
    interpreter: TargetInterpreter,
    *,
    plan_path: Path | None = None,
    checked: tuple[Manifest, Plan, Path] | None = None,
) -> Selection:
    """The manifest and plan checked by :func:`load_checked`, and what ``interpreter`` needs.

    The plan target and artifacts are selected for the interpreter's markers and tags
    (:func:`~fetchplan.install.selection.select_target`, ``select_artifacts``). ``checked`` is
    what :func:`load_checked` returned for these same paths, when the caller has it already.
    """
    manifest, plan, plan_file = (
        checked if checked is not None else load_checked(manifest_path, plan_path=plan_path)
    )
    target = select_target(plan, plan_file, interpreter.markers, interpreter.tags)
    artifacts = select_artifacts(plan, plan_file, target, interpreter.tags)
    return Selection(
        manifest=manifest,
        manifest_path=manifest_path,
        plan=plan,
        plan_path=plan_file,
        target=target,
        artifacts=tuple(artifacts),
    )


SdistBuilder = Callable[["Selection"], Mapping[str, WheelToInstall]]
"""Builds the sdists of a selection; returns each one's wheel by the sdist's file name (see
:func:`fetchplan.build.sdists.build_sdists`)."""


def selected_wheels(
    selection: Selection, build: SdistBuilder | None = None
) -> list[WheelToInstall]:
    """The wheels of ``selection``, in plan order, each paired with the manifest entry that
    vouches for it (:class:`ManifestMismatch` otherwise).

    The wheels are checked first; then, when the selection holds sdists, ``build`` is called
    and each sdist stands replaced by the wheel built from it. Without ``build`` such a
    selection is refused: the installer builds nothing itself.
    """
    wheels = match_manifest(
        [a for a in selection.artifacts if a.kind not in BUILT_KINDS],
        selection.manifest,
        selection.manifest_path,
    )
    sdists = selection.sdists
    if not sdists:
        return wheels
    if build is None:
        names = ", ".join(a.filename for a in sdists)
        raise InstallError(
            f"{selection.plan_path}: artifacts: these sdists must be built first: {names}"
        )
    built = build(selection)
    by_file = {w.filename: w for w in wheels}
    return [
        built[a.filename] if a.kind in BUILT_KINDS else by_file[a.filename]
        for a in selection.artifacts
    ]


def wheels_for_interpreter(
    manifest_path: Path,
    target: TargetInterpreter,
    *,
    plan_path: Path | None = None,
    checked: tuple[Manifest, Plan, Path] | None = None,
) -> list[WheelToInstall]:
    """The wheels ``manifest_path`` vouches for that ``target`` needs, per the manifest's plan.

    Checks the manifest and plan with :func:`load_checked`, selects the plan target and
    artifacts for the interpreter, and pairs each with its manifest entry
    (:func:`selected_wheels`). Raises :class:`ManifestMismatch` (or a schema/selection error)
    naming the file at fault; a plan whose target needs an sdist is refused (it must be built
    first: :func:`fetchplan.pipeline.install_from` does). ``checked`` is what
    :func:`load_checked` returned for these same paths, when the caller has it already (it is
    not read again).
    """
    selection = select_checked(manifest_path, target, plan_path=plan_path, checked=checked)
    return selected_wheels(selection)


def install_manifest(
    manifest_path: Path,
    target: TargetInterpreter,
    *,
    plan_path: Path | None = None,
    reinstall: bool = False,
    compile: bool = True,
    checked: tuple[Manifest, Plan, Path] | None = None,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
    store: WheelStore | None = None,
    link_mode: LinkMode = "auto",
    exact: bool = False,
    progress: InstallProgress | None = None,
) -> InstallReport:
    """Install into ``target`` the wheels of a verified manifest that the interpreter needs.

    See :func:`wheels_for_interpreter` for what is checked about the manifest (and for
    ``checked``; an sdist is refused: :func:`fetchplan.pipeline.install_from` builds them
    first) and :func:`install_wheels` for the installation itself. ``store`` and
    ``link_mode`` are :class:`StagedInstall`'s.
    """
    wheels = wheels_for_interpreter(manifest_path, target, plan_path=plan_path, checked=checked)
    return install_wheels(
        wheels,
        target,
        reinstall=reinstall,
        compile=compile,
        wait=wait,
        on_wait=on_wait,
        store=store,
        link_mode=link_mode,
        exact=exact,
        progress=progress,
    )


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _check_supported(wheels: Sequence[WheelToInstall], target: TargetInterpreter) -> None:
    supported = set(target.tags)
    seen: set[str] = set()
    for wheel in wheels:
        if wheel.name in seen:
            raise InstallError(f"{wheel.path}: a second wheel for {wheel.name}")
        seen.add(wheel.name)
        try:
            tags = parse_wheel_filename(wheel.filename)[3]
        except (InvalidWheelFilename, InvalidVersion) as exc:
            raise InstallError(f"{wheel.path}: not a valid wheel file name: {exc}") from exc
        if not any(str(tag) in supported for tag in tags):
            raise InstallError(f"{wheel.path}: not supported by {target.describe()}")


def _store_and_link(
    wheel: WheelToInstall,
    target: TargetInterpreter,
    staging: Path,
    store: WheelStore,
    linker: Linker,
    *,
    compile: bool,
    protected: Protected,
    prestaged: Prestager | None = None,
) -> StagedWheel:
    entry = store.get(wheel.sha256)
    if entry is None:
        if prestaged is not None:
            # The download is over: the prestager unpacks what is left while the archive's
            # hash is checked (on the other core), and filling the store waits for it.
            prestaged.downloaded()
        opened = open_wheel(wheel)
        try:
            # Refused before anything is unpacked; a stored wheel's files are checked against
            # the protected paths where they are staged (_check_protected, at commit).
            check_wheel(opened, target, protected)
            if prestaged is not None:
                prestaged.finish()
            entry = store.fill(opened, prestaged=prestaged)
        finally:
            opened.close()
    elif prestaged is not None:
        prestaged.cancel()
    _check_entry(entry, wheel)
    return link_wheel(
        entry,
        target,
        staging,
        requested=wheel.requested,
        compile=compile,
        linker=linker,
        direct_url=wheel.direct_url,
    )


def _check_entry(entry: StoreEntry, wheel: WheelToInstall) -> None:
    """The stored wheel is the one expected (its key is the manifest's sha256; this catches
    a manifest naming one project with another's file)."""
    if canonicalize_name(entry.name) != wheel.name or not _same_version(
        entry.version, wheel.version
    ):
        raise InstallError(
            f"{wheel.path}: the wheel of sha256 {wheel.sha256} is {entry.filename} "
            f"({entry.name} {entry.version}), not {wheel.filename}"
        )


def _check_protected(wheel: WheelToInstall, staged: StagedWheel, protected: Protected) -> None:
    """Refuse a staged file bound for one of the environment's own files, however staging
    came by it (the members and entry points were checked already when the wheel was opened:
    this holds for every way of staging)."""
    near: dict[str, bool] = {}
    for item in staged.files:
        directory = os.path.dirname(item.final)  # noqa: PTH120
        maybe = near.get(directory)
        if maybe is None:
            maybe = near[directory] = protected.directory(directory)
        if maybe and protected.path(item.final):
            raise UnsafeWheel(
                wheel.filename, None, f"would replace the environment's own {item.final}"
            )


class StagedInstall:
    """An install that verifies and stages wheels as they arrive and commits them at the end.

    ``add`` hands a wheel to a pool of workers (both cores: extraction is CPU-bound). A wheel
    the store holds already (by the manifest's sha256) is not read: its files are linked from
    the store into staging inside the prefix. Any other is opened once, its size and sha256
    checked through that handle, unpacked into the store with every member checked against
    RECORD, then linked. ``commit`` waits for them, and only when every wheel passed removes
    other versions (within the prefix only) and moves the files into place, then
    byte-compiles. So ``fetchplan run`` can stage each wheel the moment the executor verified
    it, while the other downloads go on. Leaving the ``with`` block without ``commit`` writes
    nothing to the environment.

    ``store`` is the wheel store to use and fill (:mod:`fetchplan.install.store`); without
    one, a store inside the staging directory lasts for this install only. ``link_mode``
    says how files go from the store into the environment (:mod:`fetchplan.install.link`).

    From creation to :meth:`close` it holds the environment's lock (see
    :func:`~fetchplan.install.transaction.environment_lock`: ``wait`` and ``on_wait`` say
    what to do when another fetchplan holds it), having first finished any install a kill
    interrupted (:attr:`recovered`). The change itself is one journaled transaction
    (:class:`~fetchplan.install.transaction.Transaction`).

    With ``exact``, ``commit`` also removes every distribution the environment holds that no
    added wheel names (``uv pip sync``), except :data:`INSTALLER_TOOLS`. ``progress`` is told
    of each wheel as it is staged (see :data:`InstallProgress`).
    """

    def __init__(
        self,
        target: TargetInterpreter,
        *,
        reinstall: bool = False,
        compile: bool = True,
        wait: bool = True,
        on_wait: Callable[[str], None] | None = None,
        store: WheelStore | None = None,
        link_mode: LinkMode = "auto",
        exact: bool = False,
        progress: InstallProgress | None = None,
    ) -> None:
        self.target = target
        self.reinstall = reinstall
        self.compile = compile
        self._store = store
        self.linker = Linker(link_mode)
        self.exact = exact
        self._progress = progress
        self._lock = contextlib.ExitStack()
        self.recovered: Recovered | None = self._lock.enter_context(
            environment_lock(target, wait=wait, on_wait=on_wait)
        )
        try:
            self._present = installed_distributions(target)
        except BaseException:
            self._lock.close()
            raise
        self._supported = set(target.tags)
        self._protected = Protected.of(target)
        self._order: list[str] = []
        self._outcomes: dict[str, ProjectOutcome] = {}
        self._work: list[tuple[WheelToInstall, list[InstalledDist], Future[StagedWheel]]] = []
        self._staging: Path | None = None
        self._prestagers: dict[str, Prestager] = {}
        self._all_prestagers: list[Prestager] = []
        workers = max(1, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetchplan-install")

    def __enter__(self) -> StagedInstall:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers, remove the staging directory and release the environment
        (idempotent)."""
        try:
            self._stop()
        finally:
            self._lock.close()

    def _stop(self) -> None:
        for _, _, future in self._work:
            future.cancel()
        for prestager in self._all_prestagers:
            prestager.cancel()
        self._pool.shutdown(wait=True)
        for prestager in self._all_prestagers:
            # A fill that did not happen leaves its temporary directory in the store.
            shutil.rmtree(prestager.directory.parent, ignore_errors=True)
        self._all_prestagers.clear()
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

    def _staging_dir(self) -> Path:
        if self._staging is None:
            prefix = Path(self.target.prefix)
            try:
                self._staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=prefix))
            except OSError as exc:
                raise InstallError(f"{prefix}: cannot write to the environment: {exc}") from exc
        return self._staging

    @property
    def store(self) -> WheelStore:
        if self._store is None:
            self._store = WheelStore(self._staging_dir() / "store")
        return self._store

    def prestage(
        self,
        *,
        filename: str,
        name: str,
        size: int,
        partial: Path,
        final: Path,
        sha256: str | None = None,
    ) -> None:
        """Start unpacking wheel ``filename`` (of project ``name``, ``size`` bytes) from its
        file as it downloads (``partial``, renamed ``final`` once complete), so that
        :meth:`add` finds most of it unpacked already (see :mod:`fetchplan.install.prestage`).
        Nothing is done for a wheel the store holds (by ``sha256``) already."""
        if filename in self._prestagers or not filename.endswith(".whl"):
            return
        if sha256 is not None and self.store.get(sha256) is not None:
            return
        try:
            version = str(parse_wheel_filename(filename)[1])
        except (InvalidWheelFilename, InvalidVersion):
            return  # add() refuses it
        if not self.reinstall and self._unchanged(canonicalize_name(name), version):
            return  # add() will leave it as it is: nothing to unpack
        prestager = Prestager(
            partial=partial, final=final, size=size, directory=self.store.new_temp() / "files"
        )
        self._all_prestagers.append(prestager)
        self._prestagers[filename] = prestager.start()

    def _unchanged(self, name: NormalizedName, version: str) -> bool:
        """Whether the environment holds exactly ``version`` of ``name`` already."""
        old = self._present.get(name, [])
        return len(old) == 1 and _same_version(old[0].version, version)

    def add(self, wheel: WheelToInstall) -> None:
        """Queue ``wheel``: checked now for name and tags, verified and staged in the pool."""
        _check_supported([wheel], self.target)
        if wheel.name in self._outcomes or any(w.name == wheel.name for w, _, _ in self._work):
            raise InstallError(f"{wheel.path}: a second wheel for {wheel.name}")
        self._order.append(wheel.name)
        prestaged = self._prestagers.pop(wheel.filename, None)
        old = self._present.get(wheel.name, [])
        if not self.reinstall and self._unchanged(wheel.name, wheel.version):
            self._outcomes[wheel.name] = ProjectOutcome(
                name=wheel.name, version=wheel.version, action="unchanged"
            )
            if prestaged is not None:
                prestaged.cancel()
            if self._progress is not None:
                self._progress(wheel.name)
            return
        where = self._staging_dir() / str(len(self._work))
        future = self._pool.submit(
            _store_and_link,
            wheel,
            self.target,
            where,
            self.store,
            self.linker,
            compile=self.compile,
            protected=self._protected,
            prestaged=prestaged,
        )
        if self._progress is not None:
            progress, name = self._progress, wheel.name

            def staged(done: Future[StagedWheel]) -> None:
                if not done.cancelled() and done.exception() is None:
                    progress(name)

            future.add_done_callback(staged)
        self._work.append((wheel, old, future))

    def commit(self) -> InstallReport:
        """Wait for every queued wheel; if all passed, put them in place (and, ``exact``,
        remove what no wheel names) in one transaction. Raises the first failure (in the
        order the wheels were added) having written nothing."""
        staged = self._wait_staged()
        compiled = 0
        unlisted = self._unlisted() if self.exact else []
        if staged or unlisted:
            self._check_staged(staged)
            self._transact(staged, unlisted)
            self._record_outcomes()
            self._stop()
            compiled = self._after_placing(staged)
        self.close()
        removed = _removed_outcomes(unlisted)
        return InstallReport(
            interpreter=self.target.executable,
            prefix=self.target.prefix,
            projects=(*(self._outcomes[name] for name in self._order), *removed),
            compiled=compiled,
            placed={str(k): v for k, v in self.linker.used.items()},
        )

    def _wait_staged(self) -> list[StagedWheel]:
        """Every queued wheel staged, in the order added; raises the first failure."""
        for _, _, future in self._work:
            if future.exception() is not None:
                break
        return [future.result() for _, _, future in self._work]

    def _check_staged(self, staged: list[StagedWheel]) -> None:
        """Refuse what would overwrite protected or clashing files; quiet the prestagers."""
        for (wheel, _, _), item in zip(self._work, staged, strict=True):
            _check_protected(wheel, item, self._protected)
        check_destinations(staged, self.target)
        for prestager in self._all_prestagers:
            # Those of added wheels are done; one of a wheel never added may still write.
            prestager.cancel()

    def _transact(
        self,
        staged: list[StagedWheel],
        unlisted: list[tuple[NormalizedName, list[InstalledDist]]],
    ) -> None:
        """Replace old versions by ``staged`` and remove ``unlisted`` in one transaction."""
        transaction = Transaction(self.target, staging=[self._staging_dir()])
        for (_, old, _), item in zip(self._work, staged, strict=True):
            for dist in old:
                transaction.remove(dist)
            transaction.add(item)
        for dist in (dist for _, dists in unlisted for dist in dists):
            transaction.remove(dist)
        transaction.commit()

    def _record_outcomes(self) -> None:
        """What happened to each added wheel (installed, reinstalled or replaced), logged."""
        for wheel, old, _ in self._work:
            action: Action = "installed"
            if old:
                same = all(_same_version(d.version, wheel.version) for d in old)
                action = "reinstalled" if same else "replaced"
            self._outcomes[wheel.name] = ProjectOutcome(
                name=wheel.name,
                version=wheel.version,
                action=action,
                previous=tuple(d.version for d in old),
            )
            log.info("%s %s %s", action, wheel.name, wheel.version)

    def _after_placing(self, staged: list[StagedWheel]) -> int:
        """Log what came from the wheel store; byte-compile (``compile``): the file count."""
        if self.linker.used:
            log.info(
                "placed from the wheel store: %s",
                ", ".join(f"{n} by {m}" for m, n in sorted(self.linker.used.items())),
            )
        if self.compile and staged:
            return compile_files(self.target, [f for s in staged for f in s.python_files()])
        return 0

    def _unlisted(self) -> list[tuple[NormalizedName, list[InstalledDist]]]:
        """What no added wheel names, installer tools apart (``exact`` removes them)."""
        wanted = {canonicalize_name(name) for name in self._order}
        return [
            (name, dists)
            for name, dists in sorted(self._present.items())
            if dists and name not in wanted and name not in INSTALLER_TOOLS
        ]


def _removed_outcomes(
    unlisted: list[tuple[NormalizedName, list[InstalledDist]]],
) -> list[ProjectOutcome]:
    """The outcomes of what ``exact`` removed, logged."""
    removed: list[ProjectOutcome] = []
    for name, dists in unlisted:
        versions = tuple(d.version for d in dists)
        removed.append(
            ProjectOutcome(name=name, version=versions[0], action="removed", previous=versions)
        )
        log.info("removed %s %s (not in the manifest)", name, ", ".join(versions))
    return removed


def install_wheels(
    wheels: Sequence[WheelToInstall],
    target: TargetInterpreter,
    *,
    reinstall: bool = False,
    compile: bool = True,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
    store: WheelStore | None = None,
    link_mode: LinkMode = "auto",
    exact: bool = False,
    progress: InstallProgress | None = None,
) -> InstallReport:
    """Install ``wheels`` into ``target``, all or nothing as far as verification goes.

    A project installed at the wanted version is left alone unless ``reinstall``. Every other
    wheel is taken from ``store`` when it holds it (see :class:`StagedInstall`); else it is
    opened once, its size and sha256 checked through that handle, inspected for unsafe members
    and unpacked into the store with each member checked against RECORD. Its files are then
    linked (``link_mode``) into staging inside the prefix. Only when every wheel passed are
    other versions removed (within the prefix only) and the files moved into place; nothing
    is written to the environment before. With ``compile`` the new modules are byte-compiled
    by the target interpreter. Can be called repeatedly with further wheels (each call is its
    own all-or-nothing step).

    The environment is locked throughout and changed in one journaled transaction (see
    :class:`StagedInstall` for ``wait`` and ``on_wait``, ``exact`` and ``progress``).
    """
    _check_supported(wheels, target)
    with StagedInstall(
        target,
        reinstall=reinstall,
        compile=compile,
        wait=wait,
        on_wait=on_wait,
        store=store,
        link_mode=link_mode,
        exact=exact,
        progress=progress,
    ) as install:
        for wheel in wheels:
            install.add(wheel)
        return install.commit()
