"""Building the sdists of a plan into wheels, from the verified files alone, before installing.

For each sdist the interpreter needs (no wheel of its project fits), in a private temporary
directory outside the target environment:

1. the sdist is copied out of the destination while its sha256 and size are checked against
   the manifest, and its ``[build-system]`` read from that copy;
2. the build dependencies its requirements reach in the plan (:func:`build_closure`) are
   matched with the manifest and installed, verified, into a new virtual environment made
   with the target's interpreter (:mod:`fetchplan.build.env`);
3. the backend's ``get_requires_for_build_wheel`` must be met by the plan as well; then
   ``build_wheel`` runs, offline, and the wheel must carry the sdist's name and version.

Nothing touches the target environment here: the caller installs the built wheels, with every
other wheel, only when all builds succeeded.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from fetchplan._fs import CHUNK_SIZE
from fetchplan.build.backend import Backend
from fetchplan.build.env import add_to_build_env, create_build_env, unsatisfied
from fetchplan.build.errors import BuildError
from fetchplan.build.source import read_build_system, unpack_sdist
from fetchplan.errors import HashMismatch
from fetchplan.install.errors import InstallError
from fetchplan.install.interpreter import TargetInterpreter
from fetchplan.install.selection import WheelToInstall, build_closure, match_manifest
from fetchplan.schemas.manifest import Manifest
from fetchplan.schemas.plan import Artifact, Plan, Target

__all__ = ["build_manifest_sdists", "build_sdists"]

log = logging.getLogger(__name__)


def _copy_verified(spec: WheelToInstall, into: Path) -> Path:
    """Copy the sdist ``spec`` names into ``into``, checking its size and sha256 on the way."""
    copy = into / spec.filename
    digest = hashlib.sha256()
    size = 0
    try:
        with spec.path.open("rb") as source, copy.open("xb") as out:
            while chunk := source.read(CHUNK_SIZE):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except OSError as exc:
        raise InstallError(f"{spec.path}: cannot read: {exc.strerror or exc}") from exc
    if size != spec.size:
        raise InstallError(f"{spec.path}: size {size} != the manifest's {spec.size}")
    actual = digest.hexdigest()
    if actual != spec.sha256:
        raise HashMismatch(str(spec.path), "sha256", spec.sha256, actual)
    return copy


def _wheel_spec(built: Path, artifact: Artifact) -> WheelToInstall:
    try:
        name, version, _build, _tags = parse_wheel_filename(built.name)
        same = canonicalize_name(str(name)) == artifact.name and version == Version(
            artifact.version
        )
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise BuildError(f"{artifact.filename}: built {built.name}: {exc}") from None
    if not same:
        raise BuildError(
            f"{artifact.filename}: the build made {built.name}, not {artifact.name} "
            f"{artifact.version}"
        )
    digest = hashlib.sha256()
    with built.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return WheelToInstall(
        path=built,
        filename=built.name,
        name=artifact.name,
        version=artifact.version,
        sha256=digest.hexdigest(),
        size=built.stat().st_size,
        requested=artifact.requested,
    )


def _build_one(
    artifact: Artifact,
    spec: WheelToInstall,
    *,
    plan: Plan,
    plan_path: Path,
    plan_target: Target,
    manifest: Manifest,
    manifest_path: Path,
    interpreter: TargetInterpreter,
    out_dir: Path,
) -> WheelToInstall:
    with tempfile.TemporaryDirectory(prefix="fetchplan-build-") as work_name:
        work = Path(work_name)
        copy = _copy_verified(spec, work)
        build_system = read_build_system(copy, artifact.filename)

        deps = build_closure(
            plan,
            plan_path,
            plan_target,
            build_system.requires,
            markers=interpreter.markers,
            tags=interpreter.tags,
            sdist=artifact.filename,
        )
        wheels = match_manifest(list(deps.values()), manifest, manifest_path)
        log.info("building %s with %s", artifact.filename, ", ".join(w.filename for w in wheels))
        env = create_build_env(work / "env", wheels, python=Path(interpreter.executable))
        source = unpack_sdist(copy, artifact.filename, work / "src")
        backend = Backend(source, build_system, env.python, where=artifact.filename)
        asked = backend.get_requires_for_build_wheel()
        more = unsatisfied(asked, env.installed, interpreter.markers)
        if more:
            extended = build_closure(
                plan,
                plan_path,
                plan_target,
                more,
                markers=interpreter.markers,
                tags=interpreter.tags,
                sdist=artifact.filename,
                chosen=deps,
            )
            added = [a for name, a in extended.items() if name not in deps]
            env = add_to_build_env(env, match_manifest(added, manifest, manifest_path))
        built = backend.build_wheel(work / "dist")
        result = _wheel_spec(built, artifact)
        final = out_dir / built.name
        shutil.move(str(built), final)
        log.info("built %s from %s", built.name, artifact.filename)
        return WheelToInstall(
            path=final,
            filename=result.filename,
            name=result.name,
            version=result.version,
            sha256=result.sha256,
            size=result.size,
            requested=result.requested,
        )


def build_sdists(
    sdists: Sequence[Artifact],
    *,
    plan: Plan,
    plan_path: Path,
    plan_target: Target,
    manifest: Manifest,
    manifest_path: Path,
    interpreter: TargetInterpreter,
    out_dir: Path,
) -> dict[str, WheelToInstall]:
    """Build each of ``sdists`` into a wheel in ``out_dir``; return them by sdist file name.

    Each sdist and each build dependency must be vouched for by ``manifest`` (as for any
    wheel); the build environments use ``interpreter``'s Python and only the plan's build
    dependencies for ``plan_target``. Raises :class:`InstallError`, :class:`HashMismatch` or
    :class:`~fetchplan.build.BuildError` naming the sdist at fault; the target environment is
    never written to.
    """
    specs = match_manifest(list(sdists), manifest, manifest_path)
    built: dict[str, WheelToInstall] = {}
    for artifact, spec in zip(sdists, specs, strict=True):
        built[artifact.filename] = _build_one(
            artifact,
            spec,
            plan=plan,
            plan_path=plan_path,
            plan_target=plan_target,
            manifest=manifest,
            manifest_path=manifest_path,
            interpreter=interpreter,
            out_dir=out_dir,
        )
    return built


def build_manifest_sdists(
    manifest_path: Path,
    interpreter: TargetInterpreter,
    *,
    out_dir: Path,
    plan_path: Path | None = None,
) -> list[WheelToInstall]:
    """Build, into ``out_dir``, the sdists of the manifest's plan that ``interpreter`` needs.

    The manifest and plan are checked as by :func:`~fetchplan.install.core.load_checked`, the
    plan's target and artifacts selected for the interpreter, and each sdist among them built
    by :func:`build_sdists`. For callers that install the wheels as they arrive (``fetchplan
    run``); returns an empty list when the interpreter needs no sdist.
    """
    from fetchplan.install.core import load_checked
    from fetchplan.install.selection import select_artifacts, select_target

    manifest, plan, plan_file = load_checked(manifest_path, plan_path=plan_path)
    plan_target = select_target(plan, plan_file, interpreter.markers, interpreter.tags)
    artifacts = select_artifacts(plan, plan_file, plan_target, interpreter.tags)
    sdists = [a for a in artifacts if a.kind == "sdist"]
    if not sdists:
        return []
    built = build_sdists(
        sdists,
        plan=plan,
        plan_path=plan_file,
        plan_target=plan_target,
        manifest=manifest,
        manifest_path=manifest_path,
        interpreter=interpreter,
        out_dir=out_dir,
    )
    return [built[a.filename] for a in sdists]
