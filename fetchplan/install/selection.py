"""Which files a manifest vouches for, for one interpreter: pure decisions, no file I/O.

The plan says what to install for each target; the manifest says which files the executor
fetched and verified. Here we pick the plan's target that fits the interpreter
(:func:`select_target`), the artifacts that serve it (:func:`select_artifacts`: a wheel, or an
sdist to build when no wheel fits), the build dependencies an sdist's build uses
(:func:`build_closure`), and pair each with the manifest entry that vouches for it, refusing
anything the manifest does not vouch for exactly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from fetchplan.install.errors import InstallError, ManifestMismatch
from fetchplan.schemas.directurl import direct_url
from fetchplan.schemas.manifest import Manifest, ManifestArtifact
from fetchplan.schemas.plan import BUILT_KINDS, Artifact, Plan, Target
from fetchplan.wheels import WheelToInstall

__all__ = [
    "STABLE_MARKERS",
    "WheelToInstall",
    "build_closure",
    "builds_for",
    "match_manifest",
    "select_artifacts",
    "select_target",
    "target_matches",
]

log = logging.getLogger(__name__)

# Marker values that identify an environment. The others (kernel release and build, patch
# versions) differ between the machine that planned and the one that installs without making
# the plan wrong for it.
STABLE_MARKERS = (
    "implementation_name",
    "platform_python_implementation",
    "python_version",
    "os_name",
    "sys_platform",
    "platform_system",
    "platform_machine",
)


def direct_url_json(artifact: Artifact, directory: Path | None = None) -> bytes | None:
    """The ``direct_url.json`` pip writes for ``artifact``; None when it is not direct."""
    if not artifact.direct:
        return None
    return json.dumps(direct_url(artifact, directory), sort_keys=True).encode("utf-8")


def target_matches(target: Target, markers: Mapping[str, str], tags: Collection[str]) -> bool:
    """Whether the interpreter (its marker values and supported tags) is one ``target`` serves."""
    for key in STABLE_MARKERS:
        if key in target.markers and key in markers and target.markers[key] != markers[key]:
            return False
    return any(tag in tags for tag in target.tags)


def _target_rank(
    target: Target, markers: Mapping[str, str], ranks: Mapping[str, int]
) -> tuple[int, int] | None:
    if not target_matches(target, markers, ranks):
        return None
    best = min(ranks[tag] for tag in target.tags if tag in ranks)
    agreeing = sum(1 for key, value in target.markers.items() if markers.get(key) == value)
    return best, -agreeing


def select_target(
    plan: Plan, plan_path: Path, markers: Mapping[str, str], tags: Sequence[str]
) -> Target:
    """The plan's target for this interpreter (its marker values, its tags best first).

    A plan with one target is taken as it is (the installer still checks every wheel's tags).
    Among several, a target can serve the interpreter when its identifying markers
    (:data:`STABLE_MARKERS`) do not contradict the interpreter's and it shares a wheel tag with
    it. Of those, the best is the one whose best shared tag comes first in the interpreter's
    own preference order (the most specific fit: ``cp312-cp312-manylinux_2_28_x86_64`` before
    ``manylinux_2_17`` before ``py3-none-any``); then the one with more marker values equal to
    the interpreter's (patch version, kernel release...); then the first in the plan.
    """
    if len(plan.targets) == 1:
        return plan.targets[0]
    ranks: dict[str, int] = {}
    for i, tag in enumerate(tags):
        ranks.setdefault(tag, i)
    ranked = [
        (rank, i, target)
        for i, target in enumerate(plan.targets)
        if (rank := _target_rank(target, markers, ranks)) is not None
    ]
    if ranked:
        return min(ranked, key=lambda item: (item[0], item[1]))[2]
    names = ", ".join(t.name for t in plan.targets)
    wanted = ", ".join(f"{k}={markers[k]}" for k in STABLE_MARKERS if k in markers)
    raise InstallError(f"{plan_path}: targets: none of {names} matches the interpreter ({wanted})")


def _tag_rank(filename: str, ranks: Mapping[str, int]) -> int | None:
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion):
        return None
    found = [ranks[str(t)] for t in tags if str(t) in ranks]
    return min(found) if found else None


def _serves(artifact: Artifact, target: Target) -> bool:
    return artifact.targets is None or target.name in artifact.targets


def select_artifacts(
    plan: Plan, plan_path: Path, target: Target, tags: Sequence[str]
) -> list[Artifact]:
    """The files to install for ``target`` on an interpreter supporting ``tags``.

    One artifact per project: among several wheels, the one whose best tag the interpreter
    prefers; an sdist (to be built) only when no wheel of the project fits. Build dependencies
    are for building sdists, not for the environment. Raises when a project has only wheels
    this interpreter cannot use; every such file is named.
    """
    ranks = {tag: i for i, tag in enumerate(tags)}
    by_project: dict[NormalizedName, list[Artifact]] = {}
    for artifact in plan.artifacts:
        if artifact.build_dependency or not _serves(artifact, target):
            continue
        by_project.setdefault(artifact.name, []).append(artifact)

    chosen: list[Artifact] = []
    incompatible: list[str] = []
    for candidates in by_project.values():
        ranked = [
            (rank, a)
            for a in candidates
            if a.kind == "wheel" and (rank := _tag_rank(a.filename, ranks)) is not None
        ]
        sdists = [a for a in candidates if a.kind in BUILT_KINDS]
        if ranked:
            chosen.append(min(ranked, key=lambda pair: pair[0])[1])
        elif sdists:
            chosen.append(sdists[0])
        else:
            incompatible.extend(a.filename for a in candidates)
    if incompatible:
        raise InstallError(
            f"{plan_path}: artifacts: wheels not supported by the interpreter: "
            f"{', '.join(sorted(incompatible))}"
        )
    return chosen


def builds_for(artifact: Artifact, target: Target) -> bool:
    """Whether the sdist builds of ``target`` use ``artifact`` (see ``build_targets``)."""
    if artifact.build_dependency:
        return _serves(artifact, target)
    return artifact.build_targets is not None and target.name in artifact.build_targets


def _applies(marker: Marker | None, markers: Mapping[str, str], extras: Sequence[str]) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({**markers, "extra": extra}) for extra in ("", *extras))


def build_closure(
    plan: Plan,
    plan_path: Path,
    target: Target,
    requirements: Sequence[Requirement],
    *,
    markers: Mapping[str, str],
    tags: Sequence[str],
    sdist: str,
    chosen: Mapping[NormalizedName, Artifact] | None = None,
) -> dict[NormalizedName, Artifact]:
    """The build dependencies an environment for building ``sdist`` needs, by project.

    Starts from ``requirements`` (markers evaluated with the interpreter's ``markers``) and
    follows the dependency edges of each chosen wheel, within the artifacts the builds of
    ``target`` use (:func:`builds_for`), taking for each project the wheel that satisfies the
    requirement and whose best tag the interpreter prefers. ``chosen`` is an environment to
    extend. Raises :class:`InstallError` naming the plan, the sdist and the requirement that
    no build dependency of the plan meets.
    """
    ranks = {tag: i for i, tag in enumerate(tags)}
    usable: dict[NormalizedName, list[tuple[int, Artifact]]] = {}
    for artifact in plan.artifacts:
        if artifact.kind != "wheel" or not builds_for(artifact, target):
            continue
        rank = _tag_rank(artifact.filename, ranks)
        if rank is not None:
            usable.setdefault(artifact.name, []).append((rank, artifact))
    result = dict(chosen or {})
    pending: list[tuple[Requirement, Sequence[str]]] = [(r, ()) for r in requirements]
    while pending:
        requirement, extras = pending.pop(0)
        if not _applies(requirement.marker, markers, extras):
            continue
        name = canonicalize_name(requirement.name)
        have = result.get(name)
        if have is not None:
            if requirement.specifier.contains(have.parsed_version, prereleases=True):
                continue
            raise InstallError(
                f"{plan_path}: artifacts: cannot build {sdist}: the plan's build dependency "
                f"{have.filename} does not satisfy {requirement}"
            )
        fits = [
            (rank, a)
            for rank, a in usable.get(name, [])
            if requirement.specifier.contains(a.parsed_version, prereleases=True)
        ]
        if not fits:
            hint = ""
            if plan.inputs.options.get("build_deps") is False:
                hint = " (the plan was made with --no-build-deps)"
            raise InstallError(
                f"{plan_path}: artifacts: cannot build {sdist}: its build requirement "
                f"{requirement} has no wheel among the plan's build dependencies for target "
                f"{target.name}{hint}"
            )
        best = max(fits, key=lambda pair: (-pair[0], pair[1].parsed_version))[1]
        result[name] = best
        for dependency in best.dependencies:
            try:
                pending.append((Requirement(dependency.requirement), best.extras))
            except InvalidRequirement as exc:
                raise InstallError(
                    f"{plan_path}: artifacts: {best.filename}: dependency "
                    f"{dependency.requirement!r}: {exc}"
                ) from None
    return result


def _mismatches(artifact: Artifact, entry: ManifestArtifact) -> list[str]:
    problems = []
    if entry.name != artifact.name:
        problems.append(f"name {entry.name!r} != plan's {artifact.name!r}")
    try:
        same_version = Version(entry.version) == Version(artifact.version)
    except InvalidVersion:
        same_version = entry.version == artifact.version
    if not same_version:
        problems.append(f"version {entry.version!r} != plan's {artifact.version!r}")
    if artifact.sha256 is not None and entry.sha256 != artifact.sha256:
        problems.append(f"sha256 {entry.sha256} != plan's {artifact.sha256}")
    if artifact.size is not None and entry.size != artifact.size:
        problems.append(f"size {entry.size} != plan's {artifact.size}")
    return problems


def match_manifest(
    artifacts: Sequence[Artifact], manifest: Manifest, manifest_path: Path
) -> list[WheelToInstall]:
    """Pair every planned wheel with the manifest entry vouching for it.

    Entries are matched by file name; name, version, sha256 and size must equal the plan's
    (sha256 and size where the plan states them). Raises :class:`ManifestMismatch` naming the
    manifest and every missing or differing file.
    """
    entries = {entry.filename: entry for entry in manifest.artifacts}
    base = manifest_path.parent
    base_real = base.resolve()
    wheels: list[WheelToInstall] = []
    missing: list[str] = []
    differing: list[str] = []
    for artifact in artifacts:
        entry = entries.get(artifact.filename)
        if entry is None:
            missing.append(artifact.filename)
            continue
        problems = _mismatches(artifact, entry)
        if not (base / entry.path).resolve().is_relative_to(base_real):
            problems.append(f"path {entry.path!r} leaves the manifest's directory")
        if problems:
            differing.append(f"{artifact.filename} ({'; '.join(problems)})")
            continue
        if artifact.sha256 is None:
            log.warning(
                "%s: the plan has no sha256 for %s; trusting the manifest's",
                manifest_path,
                artifact.filename,
            )
        wheels.append(
            WheelToInstall(
                path=base / entry.path,
                filename=artifact.filename,
                name=artifact.name,
                version=artifact.version,
                sha256=entry.sha256,
                size=entry.size,
                requested=artifact.requested,
                direct_url=direct_url_json(artifact),
            )
        )
    if missing:
        raise ManifestMismatch(
            f"{manifest_path}: artifacts: not verified by this manifest: {', '.join(missing)}"
        )
    if differing:
        raise ManifestMismatch(
            f"{manifest_path}: artifacts: differ from the plan: {', '.join(differing)}"
        )
    return wheels
