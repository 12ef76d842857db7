"""From a resolution to a :class:`~fetchplan.schemas.plan.Plan`.

:func:`build_plan` is pure: the resolution, the metadata of each chosen file and what was
learnt about each file (hashes, size, a local copy that satisfies it) in, a plan out, with
artifacts and their dependency edges in a fixed order so the same inputs give the same bytes.
:func:`find_satisfied` is the one I/O helper: it hashes a file already in the destination
directory or the artifact cache to decide whether it satisfies an artifact.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from fetchplan._fs import sha256_file
from fetchplan.cache import ArtifactCache
from fetchplan.planner.candidates import Candidate, DistMetadata
from fetchplan.planner.resolve import Resolution
from fetchplan.planner.target import TargetEnv
from fetchplan.schemas.plan import (
    Artifact,
    Dependency,
    HashSource,
    IndexRef,
    Inputs,
    Plan,
    SatisfiedBy,
)

__all__ = [
    "ArtifactFacts",
    "build_artifact",
    "build_plan",
    "created_now",
    "dependency_edges",
    "find_satisfied",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class ArtifactFacts:
    """What planning learnt about one chosen file beyond what its index link says."""

    hashes: Mapping[str, str]
    hash_source: HashSource | None
    size: int | None
    satisfied_by: SatisfiedBy | None = None


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
        dependencies=dependency_edges(metadata, extras, target, resolved),
        requested=requested,
        extras=tuple(sorted(extras)),
        destination=link.filename,
        satisfied_by=facts.satisfied_by,
        metadata=None if metadata.json is None else dict(metadata.json),
    )


def build_plan(
    *,
    resolution: Resolution,
    metadata: Mapping[NormalizedName, DistMetadata],
    facts: Mapping[NormalizedName, ArtifactFacts],
    target: TargetEnv,
    inputs: Inputs,
    indexes: Sequence[IndexRef],
    destination: str,
    created: str,
) -> Plan:
    """Assemble the plan: artifacts sorted by name, every field from the arguments."""
    artifacts = tuple(
        build_artifact(
            candidate,
            metadata[name],
            extras=resolution.extras.get(name, frozenset()),
            requested=name in resolution.requested,
            facts=facts[name],
            target=target,
            resolved=resolution.pins,
        )
        for name, candidate in sorted(resolution.pins.items())
    )
    return Plan(
        created=created,
        inputs=inputs,
        targets=(target.to_plan(),),
        indexes=tuple(indexes),
        destination=destination,
        artifacts=artifacts,
    )


def find_satisfied(
    filename: str, sha256: str | None, dest_dir: Path, cache: ArtifactCache | None
) -> SatisfiedBy | None:
    """A file that already satisfies the artifact: in ``dest_dir`` first, then the cache.

    Each is hashed now; a file whose content differs does not count. Without a known
    ``sha256`` nothing can be trusted to satisfy the artifact.
    """
    if sha256 is None:
        return None
    present = dest_dir / filename
    try:
        if present.is_file() and sha256_file(present) == sha256:
            return SatisfiedBy(source="destination", sha256=sha256)
    except OSError as exc:
        log.debug("cannot hash %s: %s", present, exc)
    if cache is not None:
        cached = cache.get(sha256)
        try:
            if cached is not None and sha256_file(cached) == sha256:
                return SatisfiedBy(source="cache", sha256=sha256)
        except OSError as exc:
            log.debug("cannot hash %s: %s", cached, exc)
    return None
