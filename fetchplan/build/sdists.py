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
other wheel, only when all builds succeeded (:func:`fetchplan.pipeline.install_from`); the
installer itself knows no builds.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from fetchplan._fs import check_hashed, copy_hashing, read_chunks, sha256_file
from fetchplan.build.backend import Backend
from fetchplan.build.env import add_to_build_env, create_build_env, unsatisfied
from fetchplan.build.errors import BuildError
from fetchplan.build.source import (
    BuildSystem,
    parse_build_system,
    read_build_system,
    unpack_sdist,
)
from fetchplan.install.core import Selection, select_checked
from fetchplan.install.errors import InstallError
from fetchplan.install.interpreter import TargetInterpreter
from fetchplan.install.selection import build_closure, direct_url_json, match_manifest
from fetchplan.schemas.plan import Artifact
from fetchplan.wheels import WheelToInstall

__all__ = ["build_manifest_sdists", "build_sdists"]

log = logging.getLogger(__name__)


def _copy_verified(spec: WheelToInstall, into: Path) -> Path:
    """Copy the sdist ``spec`` names into ``into``, checking its size and sha256 on the way."""
    copy = into / spec.filename
    try:
        with spec.path.open("rb") as source, copy.open("xb") as out:
            hashed = copy_hashing(read_chunks(source), out)
    except OSError as exc:
        raise InstallError(f"{spec.path}: cannot read: {exc.strerror or exc}") from exc
    if hashed.size != spec.size:
        raise InstallError(f"{spec.path}: size {hashed.size} != the manifest's {spec.size}")
    check_hashed(str(spec.path), hashed, sha256=spec.sha256, size=None)
    return copy


def _editable_directory(artifact: Artifact, plan_path: Path) -> tuple[Path, Path]:
    """The editable's directory as the plan names it, and its project's (``subdirectory``)."""
    directory = artifact.local_path(plan_path.parent)
    project = artifact.project_dir(plan_path.parent)
    if directory is None or project is None or not project.is_dir():
        where = artifact.path if artifact.subdirectory is None else project
        raise InstallError(
            f"{plan_path}: artifacts: {artifact.filename}: the editable's directory "
            f"{where} is not there"
        )
    return directory, project


def _directory_build_system(directory: Path, artifact: Artifact) -> BuildSystem:
    pyproject = directory / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8") if pyproject.is_file() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"{pyproject}: cannot read: {exc}") from None
    return parse_build_system(text, f"{artifact.filename}: {pyproject}")


def _wheel_spec(built: Path, artifact: Artifact, directory: Path | None = None) -> WheelToInstall:
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
    return WheelToInstall(
        path=built,
        filename=built.name,
        name=artifact.name,
        version=artifact.version,
        sha256=sha256_file(built),
        size=built.stat().st_size,
        requested=artifact.requested,
        direct_url=direct_url_json(artifact, directory),
    )


def _build_one(
    artifact: Artifact,
    spec: WheelToInstall | None,
    selection: Selection,
    interpreter: TargetInterpreter,
    out_dir: Path,
) -> WheelToInstall:
    """Build ``artifact``: from its verified archive ``spec``, or, for an editable (``spec``
    None), from its directory through the PEP 660 hooks."""

    def closure(
        requirements: Sequence[Requirement],
        chosen: Mapping[NormalizedName, Artifact] | None = None,
    ) -> dict[NormalizedName, Artifact]:
        return build_closure(
            selection.plan,
            selection.plan_path,
            selection.target,
            requirements,
            markers=interpreter.markers,
            tags=interpreter.tags,
            sdist=artifact.filename,
            chosen=chosen,
        )

    manifest, manifest_path = selection.manifest, selection.manifest_path
    directory = project = None
    # A directory's or commit's archive holds its project's tree already; an sdist archive's
    # project may lie in a subdirectory of it.
    inner = artifact.subdirectory if artifact.kind == "sdist" else None
    with tempfile.TemporaryDirectory(prefix="fetchplan-build-") as work_name:
        work = Path(work_name)
        if spec is None:
            directory, project = _editable_directory(artifact, selection.plan_path)
            build_system = _directory_build_system(project, artifact)
        else:
            copy = _copy_verified(spec, work)
            build_system = read_build_system(copy, artifact.filename, inner)

        deps = closure(build_system.requires)
        wheels = match_manifest(list(deps.values()), manifest, manifest_path)
        log.info("building %s with %s", artifact.filename, ", ".join(w.filename for w in wheels))
        env = create_build_env(work / "env", wheels, python=Path(interpreter.executable))
        if project is None:
            source = unpack_sdist(copy, artifact.filename, work / "src", inner)
        else:
            source = project
        backend = Backend(source, build_system, env.python, where=artifact.filename)
        if directory is None:
            asked = backend.get_requires_for_build_wheel()
        else:
            asked = backend.get_requires_for_build_editable()
        more = unsatisfied(asked, env.installed, interpreter.markers)
        if more:
            extended = closure(more, chosen=deps)
            added = [a for name, a in extended.items() if name not in deps]
            env = add_to_build_env(env, match_manifest(added, manifest, manifest_path))
        if directory is None:
            built = backend.build_wheel(work / "dist")
        else:
            built = backend.build_editable(work / "dist")
        result = _wheel_spec(built, artifact, project)
        final = out_dir / built.name
        shutil.move(str(built), final)
        log.info("built %s from %s", built.name, artifact.filename)
        return replace(result, path=final)


def build_sdists(
    selection: Selection, interpreter: TargetInterpreter, *, out_dir: Path
) -> dict[str, WheelToInstall]:
    """Build each sdist of ``selection`` into a wheel in ``out_dir``; return them by file name.

    Each sdist and each build dependency must be vouched for by the selection's manifest (as
    for any wheel); the build environments use ``interpreter``'s Python and only the plan's
    build dependencies for the selection's target. Raises :class:`InstallError`,
    :class:`HashMismatch` or :class:`~fetchplan.build.BuildError` naming the sdist at fault;
    the target environment is never written to.
    """
    sdists = [a for a in selection.sdists if not a.editable]
    specs = match_manifest(sdists, selection.manifest, selection.manifest_path)
    built: dict[str, WheelToInstall] = {}
    for artifact, spec in zip(sdists, specs, strict=True):
        built[artifact.filename] = _build_one(artifact, spec, selection, interpreter, out_dir)
    for artifact in selection.sdists:
        if artifact.editable:
            built[artifact.filename] = _build_one(artifact, None, selection, interpreter, out_dir)
    return built


def build_manifest_sdists(
    manifest_path: Path,
    interpreter: TargetInterpreter,
    *,
    out_dir: Path,
    plan_path: Path | None = None,
) -> list[WheelToInstall]:
    """Build, into ``out_dir``, the sdists of the manifest's plan that ``interpreter`` needs.

    The manifest and plan are checked and the plan's target and artifacts selected for the
    interpreter by :func:`~fetchplan.install.core.select_checked`, and each sdist among them
    built by :func:`build_sdists`. For callers that install the wheels as they arrive
    (``fetchplan run``); returns an empty list when the interpreter needs no sdist.
    """
    selection = select_checked(manifest_path, interpreter, plan_path=plan_path)
    built = build_sdists(selection, interpreter, out_dir=out_dir)
    return [built[a.filename] for a in selection.sdists]
