"""Installing a verified manifest, or a list of wheels, into a target interpreter.

The order is what keeps the environment whole: every wheel is verified and extracted into
staging first (in parallel, one wheel per worker); only when all succeeded are old versions
removed and the staged files renamed into place; then the new modules are byte-compiled.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from fetchplan.install.bytecode import compile_files
from fetchplan.install.environment import (
    InstalledDist,
    check_destinations,
    commit,
    installed_distributions,
    uninstall,
)
from fetchplan.install.errors import InstallError, ManifestMismatch
from fetchplan.install.interpreter import TargetInterpreter
from fetchplan.install.selection import (
    WheelToInstall,
    match_manifest,
    select_artifacts,
    select_target,
)
from fetchplan.install.staging import StagedWheel, stage_wheel
from fetchplan.install.wheel import open_wheel
from fetchplan.schemas import plan_digest
from fetchplan.schemas.manifest import load_manifest
from fetchplan.schemas.plan import load_plan

__all__ = [
    "Action",
    "InstallReport",
    "ProjectOutcome",
    "install_manifest",
    "install_wheels",
    "wheels_for_interpreter",
]

log = logging.getLogger(__name__)

Action = Literal["installed", "replaced", "reinstalled", "unchanged"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ProjectOutcome:
    name: str
    version: str
    action: Action
    previous: tuple[str, ...] = ()
    """Versions removed to make room (for ``replaced`` and ``reinstalled``)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class InstallReport:
    """What an install did, per project, in the order the wheels were given."""

    interpreter: str
    prefix: str
    projects: tuple[ProjectOutcome, ...]
    compiled: int = 0

    def count(self, action: Action) -> int:
        return sum(1 for p in self.projects if p.action == action)


def wheels_for_interpreter(
    manifest_path: Path,
    target: TargetInterpreter,
    *,
    plan_path: Path | None = None,
    build_dir: Path | None = None,
) -> list[WheelToInstall]:
    """The wheels ``manifest_path`` vouches for that ``target`` needs, per the manifest's plan.

    Reads and schema-checks the manifest and the plan (``plan_path``, else the manifest's
    ``plan.path``), checks the plan's digest is the manifest's ``plan.sha256``, selects the plan
    target and artifacts for the interpreter, and pairs each with its manifest entry. Raises
    :class:`ManifestMismatch` (or a schema/selection error) naming the file at fault.

    An sdist the interpreter needs is built into a wheel in ``build_dir`` (see
    :mod:`fetchplan.install.build`), which then stands in its place; without ``build_dir``
    such a plan is refused.
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
    plan_target = select_target(plan, plan_file, target.markers, target.tags)
    artifacts = select_artifacts(plan, plan_file, plan_target, target.tags)
    sdists = [a for a in artifacts if a.kind == "sdist"]
    wheels = match_manifest([a for a in artifacts if a.kind != "sdist"], manifest, manifest_path)
    if not sdists:
        return wheels
    if build_dir is None:
        names = ", ".join(a.filename for a in sdists)
        raise InstallError(f"{plan_file}: artifacts: these sdists must be built first: {names}")
    from fetchplan.install.build import build_sdists

    built = build_sdists(
        sdists,
        plan=plan,
        plan_path=plan_file,
        plan_target=plan_target,
        manifest=manifest,
        manifest_path=manifest_path,
        interpreter=target,
        out_dir=build_dir,
    )
    by_file = {w.filename: w for w in wheels}
    return [built[a.filename] if a.kind == "sdist" else by_file[a.filename] for a in artifacts]


def install_manifest(
    manifest_path: Path,
    target: TargetInterpreter,
    *,
    plan_path: Path | None = None,
    reinstall: bool = False,
    compile: bool = True,
) -> InstallReport:
    """Install into ``target`` the wheels of a verified manifest that the interpreter needs.

    See :func:`wheels_for_interpreter` for what is checked about the manifest and
    :func:`install_wheels` for the installation itself. sdists are built first, each in its
    own isolated environment of the plan's build dependencies; nothing is installed unless
    every build succeeded.
    """
    with tempfile.TemporaryDirectory(prefix="fetchplan-built-") as built:
        wheels = wheels_for_interpreter(
            manifest_path, target, plan_path=plan_path, build_dir=Path(built)
        )
        return install_wheels(wheels, target, reinstall=reinstall, compile=compile)


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


def _verify_and_stage(
    wheel: WheelToInstall, target: TargetInterpreter, staging: Path, *, compile: bool
) -> StagedWheel:
    opened = open_wheel(wheel)
    try:
        staged = stage_wheel(opened, target, staging, compile=compile)
        opened.check_unchanged()
    finally:
        opened.close()
    return staged


def _stage_all(
    wheels: Sequence[WheelToInstall], target: TargetInterpreter, staging: Path, *, compile: bool
) -> list[StagedWheel]:
    """Verify and stage every wheel, in parallel; raise the first failure in wheel order."""
    workers = max(1, min(len(wheels), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetchplan-install") as pool:
        futures: list[Future[StagedWheel]] = [
            pool.submit(_verify_and_stage, w, target, staging / str(i), compile=compile)
            for i, w in enumerate(wheels)
        ]
        for future in futures:
            if future.exception() is not None:
                for other in futures:
                    other.cancel()
                break
    return [future.result() for future in futures]


def install_wheels(
    wheels: Sequence[WheelToInstall],
    target: TargetInterpreter,
    *,
    reinstall: bool = False,
    compile: bool = True,
) -> InstallReport:
    """Install ``wheels`` into ``target``, all or nothing as far as verification goes.

    A project installed at the wanted version is left alone unless ``reinstall``. Every other
    wheel is opened once, its size and sha256 checked through that handle, inspected for
    unsafe members and extracted into staging inside the prefix with each member checked
    against RECORD. Only when every wheel passed are other versions removed (within the prefix
    only) and the files moved into place; nothing is written to the environment before. With
    ``compile`` the new modules are byte-compiled by the target interpreter. Can be called
    repeatedly with further wheels (each call is its own all-or-nothing step).
    """
    _check_supported(wheels, target)
    present = installed_distributions(target)
    outcomes: dict[str, ProjectOutcome] = {}
    work: list[tuple[WheelToInstall, list[InstalledDist]]] = []
    for wheel in wheels:
        old = present.get(wheel.name, [])
        if not reinstall and len(old) == 1 and _same_version(old[0].version, wheel.version):
            outcomes[wheel.name] = ProjectOutcome(
                name=wheel.name, version=wheel.version, action="unchanged"
            )
        else:
            work.append((wheel, old))

    compiled = 0
    if work:
        prefix = Path(target.prefix)
        try:
            staging = Path(tempfile.mkdtemp(prefix=".fetchplan-staging-", dir=prefix))
        except OSError as exc:
            raise InstallError(f"{prefix}: cannot write to the environment: {exc}") from exc
        try:
            staged = _stage_all([w for w, _ in work], target, staging, compile=compile)
            check_destinations(staged, target)
            for (wheel, old), item in zip(work, staged, strict=True):
                for dist in old:
                    uninstall(dist, target)
                commit(item)
                action: Action = "installed"
                if old:
                    same = all(_same_version(d.version, wheel.version) for d in old)
                    action = "reinstalled" if same else "replaced"
                outcomes[wheel.name] = ProjectOutcome(
                    name=wheel.name,
                    version=wheel.version,
                    action=action,
                    previous=tuple(d.version for d in old),
                )
                log.info("%s %s %s", action, wheel.name, wheel.version)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if compile:
            compiled = compile_files(target, [f for s in staged for f in s.python_files()])
    return InstallReport(
        interpreter=target.executable,
        prefix=target.prefix,
        projects=tuple(outcomes[w.name] for w in wheels),
        compiled=compiled,
    )
