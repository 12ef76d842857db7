"""From the resolutions of a run to a :class:`~fetchplan.schemas.plan.Plan`, purely.

:func:`build_plan` is the builder the planner uses: every resolution of the run (one per
target, plus one per target for the build requirements of its sdists, each a :class:`Role`),
what was learnt about each chosen file (:class:`ArtifactFacts`: hashes, size, a local copy
that satisfies it) and the plan's other fields as values in, a plan out, artifacts and their
dependency edges in a fixed order so that the same inputs give the same bytes.

:func:`merge_artifacts` gives each file one artifact, marked with the targets it serves. A
file installed in some target has ``build_dependency: false``, ``targets`` listing those
targets, and ``build_targets`` listing the targets whose sdist builds use it too; a file only
sdist builds use has ``build_dependency: true`` and ``targets`` listing the targets whose
builds use it. In a single-target plan ``targets`` is left out, so such a plan is the same,
byte for byte, as before targets existed. :func:`plan_inputs` is what the plan records of its
inputs. Nothing here reads a file or the network (:mod:`.facts` learns the facts).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from fetchplan._age import format_time
from fetchplan.errors import InputError
from fetchplan.planner import reqfile
from fetchplan.planner.candidates import Candidate, DistMetadata
from fetchplan.planner.context import TargetResolution
from fetchplan.planner.index import Link
from fetchplan.planner.options import PlanOptions
from fetchplan.planner.settings import PlanSettings
from fetchplan.planner.target import TargetEnv
from fetchplan.schemas.plan import (
    Artifact,
    Dependency,
    HashSource,
    IndexRef,
    Inputs,
    Plan,
    ProjectStatus,
    SatisfiedBy,
    StatusName,
)

__all__ = [
    "ArtifactFacts",
    "Role",
    "build_artifact",
    "build_plan",
    "created_now",
    "dependency_edges",
    "merge_artifacts",
    "plan_inputs",
    "relative_destination",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class ArtifactFacts:
    """What planning learnt about one chosen file beyond what its index link says."""

    hashes: Mapping[str, str]
    hash_source: HashSource | None
    size: int | None
    satisfied_by: SatisfiedBy | None = None


@dataclass(frozen=True, slots=True)
class Role:
    """A resolution's part in the plan: what a target installs, or what its sdist builds use."""

    resolved: TargetResolution
    build: bool = False


def created_now() -> str:
    """The current UTC time as the plan's ``created`` value (seconds precision)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def dependency_edges(
    metadata: DistMetadata,
    extras: frozenset[str],
    target: TargetEnv,
    resolved: Mapping[NormalizedName, Candidate],
) -> tuple[Dependency, ...]:
    """The requirements of ``metadata`` that apply on ``target`` with ``extras`` selected.

    Only edges to resolved projects are kept (any other would have failed resolution), each
    once, ordered by project name then requirement text.
    """
    edges: set[tuple[str, str]] = set()
    for requirement in metadata.requires_dist:
        if not target.evaluate(requirement.marker, extras):
            continue
        name = canonicalize_name(requirement.name)
        if name not in resolved or name == metadata.name:
            continue
        edges.add((name, str(requirement)))
    return tuple(
        Dependency(name=canonicalize_name(name), requirement=text) for name, text in sorted(edges)
    )


_STATUSES: dict[str, StatusName] = {
    "archived": "archived",
    "quarantined": "quarantined",
    "deprecated": "deprecated",
}


def _status(link: Link) -> ProjectStatus | None:
    if link.project_status is None:
        return None
    status, reason = link.project_status
    name = _STATUSES.get(status)
    return None if name is None else ProjectStatus(status=name, reason=reason)


def build_artifact(
    candidate: Candidate,
    metadata: DistMetadata,
    *,
    extras: frozenset[str],
    requested: bool,
    facts: ArtifactFacts,
    target: TargetEnv,
    resolved: Mapping[NormalizedName, Candidate],
) -> Artifact:
    """The plan entry for one resolved project."""
    link = candidate.link
    if link is None:
        raise ValueError(f"{candidate} has no file")
    requires_python = link.requires_python
    if requires_python is None and metadata.requires_python is not None:
        requires_python = str(metadata.requires_python)
    return Artifact(
        name=candidate.name,
        version=str(candidate.version),
        kind=link.kind,
        filename=link.filename,
        url=link.url,
        index=link.index,
        hashes=dict(sorted(facts.hashes.items())),
        hash_source=facts.hash_source,
        size=facts.size,
        requires_python=requires_python,
        yanked=link.yanked,
        yanked_reason=link.yanked_reason,
        upload_time=link.upload_time,
        provenance=link.provenance,
        project_status=_status(link),
        dependencies=dependency_edges(metadata, extras, target, resolved),
        requested=requested,
        extras=tuple(sorted(extras)),
        destination=link.filename,
        satisfied_by=facts.satisfied_by,
        metadata=None if metadata.json is None else dict(metadata.json),
    )


def _merge_one(
    group: Sequence[tuple[Role, Artifact]], order: Sequence[str], several: bool
) -> Artifact:
    """One artifact for a file the roles of ``group`` all chose."""
    first = _same_file(group)
    installed = any(not role.build for role, _ in group)
    targets, build_targets = _served(group, order, several)
    dependencies = sorted({(d.name, d.requirement) for _, a in group for d in a.dependencies})
    return replace(
        first,
        dependencies=tuple(Dependency(name=n, requirement=r) for n, r in dependencies),
        requested=any(a.requested for _, a in group),
        extras=tuple(sorted({e for _, a in group for e in a.extras})),
        build_dependency=not installed,
        targets=targets,
        build_targets=build_targets,
    )


def _same_file(group: Sequence[tuple[Role, Artifact]]) -> Artifact:
    """The artifact of ``group``'s first role, once every role's is the same file."""
    first = group[0][1]
    for _role, other in group[1:]:
        if other.url != first.url or other.sha256 != first.sha256:
            raise InputError(
                f"{first.filename}: two different files of this name were chosen "
                f"({first.url} and {other.url}); plan the targets separately"
            )
    return first


def _served(
    group: Sequence[tuple[Role, Artifact]], order: Sequence[str], several: bool
) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """The ``targets`` and ``build_targets`` of a file (see the module docstring), in the
    plan's target order."""
    runtime = {role.resolved.target.name for role, _ in group if not role.build}
    builds = {role.resolved.target.name for role, _ in group if role.build}
    ordered_runtime = tuple(n for n in order if n in runtime)
    ordered_builds = tuple(n for n in order if n in builds)
    if runtime:
        return (ordered_runtime if several else None), (ordered_builds or None)
    return (ordered_builds if several else None), None


def merge_artifacts(
    roles: Sequence[Role], facts: Mapping[str, ArtifactFacts], order: Sequence[str]
) -> tuple[Artifact, ...]:
    """One artifact per chosen file over every role, sorted by name, version and file name.

    ``facts`` is keyed by file name; ``order`` lists the plan's target names (a single name
    leaves ``targets`` out). Raises :class:`InputError` when two roles chose different files
    of the same name (their destinations would collide).
    """
    groups: dict[str, list[tuple[Role, Artifact]]] = {}
    for role in roles:
        resolution = role.resolved.resolution
        for name, candidate in resolution.pins.items():
            link = candidate.link
            if link is None:  # pragma: no cover - every pin but <python> has a file
                continue
            artifact = build_artifact(
                candidate,
                role.resolved.metadata[name],
                extras=resolution.extras.get(name, frozenset()),
                requested=not role.build and name in resolution.requested,
                facts=facts[link.filename],
                target=role.resolved.target,
                resolved=resolution.pins,
            )
            groups.setdefault(link.filename, []).append((role, artifact))
    several = len(order) > 1
    merged = [_merge_one(group, order, several) for group in groups.values()]
    merged.sort(key=lambda a: (a.name, Version(a.version), a.filename))
    return tuple(merged)


def plan_inputs(
    requirement_set: reqfile.RequirementSet, options: PlanOptions, settings: PlanSettings
) -> Inputs:
    """What the plan records of its inputs: the requirements and constraints as written, and
    the options that shaped the resolution (a default left out where the plan format says so)."""
    opts: dict[str, Any] = {
        "pre": settings.pre,
        "only_binary": sorted(settings.only_binary),
        "no_binary": sorted(settings.no_binary),
        "no_index": settings.no_index,
        "index_strategy": options.index_strategy.value,
        "compute_hashes": options.compute_hashes,
        "trusted_hosts": sorted(set(settings.trusted_hosts)),
    }
    if settings.prefer_binary:
        opts["prefer_binary"] = True
    if settings.exclude_newer is not None:
        opts["exclude_newer"] = format_time(settings.exclude_newer)
    if settings.exclude_newer_package:
        opts["exclude_newer_package"] = {
            name: False if cut_off is None else format_time(cut_off)
            for name, cut_off in settings.exclude_newer_package
        }
    if not options.build_deps:
        opts["build_deps"] = False
    if options.no_deps:
        opts["no_deps"] = True
    return Inputs(
        requirements=tuple(str(p.requirement) for p in requirement_set.requirements),
        constraints=tuple(str(p.requirement) for p in requirement_set.constraints),
        options=opts,
    )


def relative_destination(dest_dir: Path, plan_dir: Path) -> str:
    """The plan's ``destination``: ``dest_dir`` relative to the plan's directory (both
    absolute), or as it is when no relative path leads there (another drive on Windows)."""
    try:
        return Path(os.path.relpath(dest_dir, plan_dir)).as_posix()
    except ValueError:
        return dest_dir.as_posix()


def build_plan(
    *,
    roles: Sequence[Role],
    facts: Mapping[str, ArtifactFacts],
    targets: Sequence[TargetEnv],
    inputs: Inputs,
    indexes: Sequence[IndexRef],
    destination: str,
    created: str,
) -> Plan:
    """Assemble the plan: one artifact per chosen file over every role (``facts`` keyed by
    file name, :func:`merge_artifacts`), every other field from the arguments."""
    return Plan(
        created=created,
        inputs=inputs,
        targets=tuple(t.to_plan() for t in targets),
        indexes=tuple(indexes),
        destination=destination,
        artifacts=merge_artifacts(roles, facts, [t.name for t in targets]),
    )
