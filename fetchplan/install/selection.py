"""Which wheels a manifest vouches for, for one interpreter: pure decisions, no file I/O.

The plan says what to install for each target; the manifest says which files the executor
fetched and verified. Here we pick the plan's target that fits the interpreter, the artifacts
that serve it, and pair each with the manifest entry that vouches for it, refusing anything the
manifest does not vouch for exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, NormalizedName, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from fetchplan.install.errors import InstallError, ManifestMismatch
from fetchplan.schemas.manifest import Manifest, ManifestArtifact
from fetchplan.schemas.plan import Artifact, Plan, Target

__all__ = [
    "STABLE_MARKERS",
    "WheelToInstall",
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


@dataclass(frozen=True, kw_only=True, slots=True)
class WheelToInstall:
    """A wheel file and what it must be: the expectations it is verified against."""

    path: Path
    filename: str
    name: NormalizedName
    version: str
    sha256: str
    size: int
    requested: bool = False


def target_matches(target: Target, markers: Mapping[str, str], tags: Collection[str]) -> bool:
    """Whether the interpreter (its marker values and supported tags) is one ``target`` serves."""
    for key in STABLE_MARKERS:
        if key in target.markers and key in markers and target.markers[key] != markers[key]:
            return False
    return any(tag in tags for tag in target.tags)


def select_target(
    plan: Plan, plan_path: Path, markers: Mapping[str, str], tags: Sequence[str]
) -> Target:
    """The plan's target for this interpreter: the only one, or the first that matches."""
    if len(plan.targets) == 1:
        return plan.targets[0]
    supported = set(tags)
    for target in plan.targets:
        if target_matches(target, markers, supported):
            return target
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


def select_artifacts(
    plan: Plan, plan_path: Path, target: Target, tags: Sequence[str]
) -> list[Artifact]:
    """The wheels to install for ``target`` on an interpreter supporting ``tags``.

    One artifact per project: among several wheels, the one whose best tag the interpreter
    prefers. Build dependencies are for building sdists, not for the environment. Raises when a
    project has only an sdist (building is not supported yet) or only wheels this interpreter
    cannot use; every such file is named.
    """
    ranks = {tag: i for i, tag in enumerate(tags)}
    by_project: dict[NormalizedName, list[Artifact]] = {}
    for artifact in plan.artifacts:
        if artifact.build_dependency:
            continue
        if artifact.targets is not None and target.name not in artifact.targets:
            continue
        by_project.setdefault(artifact.name, []).append(artifact)

    chosen: list[Artifact] = []
    sdists: list[str] = []
    incompatible: list[str] = []
    for candidates in by_project.values():
        ranked = [
            (rank, a)
            for a in candidates
            if a.kind == "wheel" and (rank := _tag_rank(a.filename, ranks)) is not None
        ]
        if ranked:
            chosen.append(min(ranked, key=lambda pair: pair[0])[1])
        elif any(a.kind == "sdist" for a in candidates):
            sdists.extend(a.filename for a in candidates if a.kind == "sdist")
        else:
            incompatible.extend(a.filename for a in candidates)
    if sdists:
        raise InstallError(
            f"{plan_path}: artifacts: cannot install sdists yet (building them is not "
            f"supported): {', '.join(sorted(sdists))}"
        )
    if incompatible:
        raise InstallError(
            f"{plan_path}: artifacts: wheels not supported by the interpreter: "
            f"{', '.join(sorted(incompatible))}"
        )
    return chosen


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
    wheels: list[WheelToInstall] = []
    missing: list[str] = []
    differing: list[str] = []
    for artifact in artifacts:
        entry = entries.get(artifact.filename)
        if entry is None:
            missing.append(artifact.filename)
            continue
        problems = _mismatches(artifact, entry)
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
