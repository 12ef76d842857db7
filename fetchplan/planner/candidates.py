"""From a project's links to its candidates: one best file per version, and why others lost.

Pure: given the links every source listed, the target environment and the user's format and
hash constraints, :func:`select_candidates` picks for each version the file an installer on the
target would use (the best-ranked compatible wheel; an sdist only when no compatible wheel
exists and source builds are allowed) and records, per rejected version, the reasons. The
resolver provider filters these further by specifier, pre-release and yanked rules.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from fetchplan.planner.index import Link
from fetchplan.planner.target import TargetEnv

__all__ = [
    "Candidate",
    "DistMetadata",
    "Format",
    "FormatControl",
    "ProjectCandidates",
    "Rejection",
    "select_candidates",
]


class Format(Enum):
    BINARY = "binary"
    SOURCE = "source"


@dataclass(frozen=True, slots=True)
class FormatControl:
    """pip's ``--only-binary``/``--no-binary`` sets (canonical names or ``:all:``), in the
    state pip reaches after applying every option in order (see ``reqfile.merge``)."""

    only_binary: frozenset[str] = frozenset()
    no_binary: frozenset[str] = frozenset()

    def allowed(self, name: str) -> frozenset[Format]:
        """The formats allowed for project ``name`` (pip's ``get_allowed_formats``)."""
        canonical = canonicalize_name(name)
        allowed = {Format.BINARY, Format.SOURCE}
        if canonical in self.only_binary:
            allowed.discard(Format.SOURCE)
        elif canonical in self.no_binary:
            allowed.discard(Format.BINARY)
        elif ":all:" in self.only_binary:
            allowed.discard(Format.SOURCE)
        elif ":all:" in self.no_binary:
            allowed.discard(Format.BINARY)
        return frozenset(allowed)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One version of a project, with the file chosen for it (and the extras asked of it)."""

    name: NormalizedName
    version: Version
    link: Link | None
    extras: frozenset[str] = frozenset()

    @property
    def yanked(self) -> bool:
        return self.link is not None and self.link.yanked

    def with_extras(self, extras: frozenset[str]) -> Candidate:
        return Candidate(name=self.name, version=self.version, link=self.link, extras=extras)

    def __str__(self) -> str:
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.name}{extras} {self.version}"


@dataclass(frozen=True, kw_only=True, slots=True)
class DistMetadata:
    """What the resolver needs from a file's core metadata, and what getting it cost.

    ``source`` is how it was obtained (``local``, ``pep658``, ``range``, ``whole``, ``sdist``);
    ``total_size`` and ``sha256`` are by-products (a range response's total length, the digest
    of a wholly fetched file) that spare later requests. ``json`` is the whole core metadata in
    its PEP 566 JSON form, for the plan to record (see ``metadata.metadata_json``).
    """

    name: NormalizedName
    version: Version
    requires_dist: tuple[Requirement, ...] = ()
    requires_python: SpecifierSet | None = None
    provides_extra: frozenset[str] = frozenset()
    source: str = "local"
    requests: int = 0
    bytes_received: int = 0
    total_size: int | None = None
    sha256: str | None = None
    json: Mapping[str, Any] | None = field(default=None, hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class Rejection:
    version: Version
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.version} ({'; '.join(self.reasons)})"


@dataclass(frozen=True, slots=True)
class ProjectCandidates:
    """The usable versions of a project (newest first) and the versions rejected, with why."""

    name: NormalizedName
    candidates: tuple[Candidate, ...]
    rejected: tuple[Rejection, ...] = ()
    sources: tuple[str, ...] = ()
    found: bool = True
    """False when no index or find-links location knows the project at all."""
    has_wheel: Mapping[Version, bool] = field(default_factory=dict, hash=False)


def _link_problem(
    link: Link,
    target: TargetEnv,
    formats: frozenset[Format],
    allowed_hashes: Mapping[str, frozenset[str]] | None,
    url_ok: Callable[[str], bool],
) -> str | None:
    if not url_ok(link.url):
        return "insecure http:// URL (use https or --trusted-host)"
    if link.kind == "wheel":
        if Format.BINARY not in formats:
            return "wheels not allowed (--no-binary)"
        if target.tag_priority(link.tags) is None:
            return "no wheel for the target's tags"
    elif Format.SOURCE not in formats:
        return "only an sdist, and binaries are required (--only-binary)"
    if not target.python_matches(link.requires_python):
        return f"requires Python {link.requires_python}"
    if allowed_hashes:
        known = {algo: value for algo, value in link.hashes.items() if algo in allowed_hashes}
        if known and not any(value in allowed_hashes[algo] for algo, value in known.items()):
            return "hash not among the requirement's --hash values"
    return None


def _rank(link: Link, target: TargetEnv, position: int) -> tuple[object, ...]:
    priority = target.tag_priority(link.tags) if link.kind == "wheel" else None
    build = link.build if link.build else (-1, "")
    return (
        link.yanked,
        link.kind != "wheel",
        priority if priority is not None else 0,
        -int(build[0]),
        str(build[1]),
        # sdists: .tar.gz before .zip, then the source order, then the name for determinism.
        not link.filename.endswith((".whl", ".tar.gz")),
        position,
        link.filename,
    )


def select_candidates(
    name: NormalizedName,
    links: Sequence[Link],
    target: TargetEnv,
    *,
    formats: FormatControl | None = None,
    allowed_hashes: Mapping[str, frozenset[str]] | None = None,
    url_ok: Callable[[str], bool] = lambda _url: True,
    sources: Sequence[str] = (),
    found: bool = True,
) -> ProjectCandidates:
    """Pick the best file of each version of ``name`` for ``target``; explain the rejects.

    ``links`` come in source priority order (earlier wins a tie). ``allowed_hashes`` maps an
    algorithm to the digests ``--hash`` options allow; links whose known digest is not among
    them are rejected (links without a digest stay: they are checked once fetched).
    """
    allowed = (formats or FormatControl()).allowed(name)
    by_version: dict[Version, list[tuple[int, Link]]] = defaultdict(list)
    for position, link in enumerate(links):
        if link.name == name:
            by_version[link.version].append((position, link))
    candidates: list[Candidate] = []
    rejected: list[Rejection] = []
    has_wheel: dict[Version, bool] = {}
    for version in sorted(by_version, reverse=True):
        usable: list[tuple[int, Link]] = []
        reasons: list[str] = []
        for position, link in by_version[version]:
            problem = _link_problem(link, target, allowed, allowed_hashes, url_ok)
            if problem is None:
                usable.append((position, link))
            elif problem not in reasons:
                reasons.append(problem)
        if not usable:
            rejected.append(Rejection(version=version, reasons=tuple(reasons)))
            continue
        best = min(usable, key=lambda item: _rank(item[1], target, item[0]))[1]
        has_wheel[version] = best.kind == "wheel"
        candidates.append(Candidate(name=name, version=version, link=best))
    return ProjectCandidates(
        name=name,
        candidates=tuple(candidates),
        rejected=tuple(rejected),
        sources=tuple(sources),
        found=found,
        has_wheel=has_wheel,
    )
