"""The resolvelib provider: a thin adapter between resolvelib and an injected finder.

The finder (see :class:`Finder`) knows the candidates of a project and the metadata of a
candidate; this module only applies pip's selection rules on top:

* identifiers are the normalized name, or ``name[extra1,extra2]`` for a project with extras
  (an extras candidate depends on its base candidate at the same version, as in pip);
* ``Requires-Python`` becomes a requirement on the special ``<python>`` identifier whose one
  candidate is the target's Python, so a conflict with it is explained like any other;
* versions are filtered by the combined specifier of every requirement and constraint, with
  pre-releases allowed when ``--pre`` is given, when a specifier names one, or when no final
  release matches (pip's rules, via ``SpecifierSet.filter``);
* yanked files (PEP 592) are used only when the requirement pins a version with ``==``/``===``
  and every matching version is yanked;
* newest version first, or, with ``--prefer-binary``, versions with a wheel first;
* a candidate that no solution can hold is learned once and rejected at once afterwards
  (see :meth:`PlanProvider.get_dependencies`): one whose metadata cannot be prepared, one that
  requires what the user's requirements or constraints exclude, one that requires a project
  none of whose versions allowed there can be held. resolvelib forgets what it learned about a
  project when it backtracks past the pin that brought it in; this knowledge does not depend
  on any pin, so it is kept for the whole resolution;
* lazily: :meth:`PlanProvider.find_matches` gives resolvelib an iterator factory, and a
  version's files are turned into its candidate only when resolvelib iterates to it
  (:func:`iter_matches`), so a resolution reads a few versions of a page of hundreds
  (``--prefer-binary`` decides every version the specifier allows, to sort them).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, cast

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib import AbstractProvider
from resolvelib.structs import Matches, RequirementInformation

from fetchplan.errors import FetchplanError
from fetchplan.planner.candidates import Candidate, DistMetadata, ProjectCandidates
from fetchplan.planner.index import IndexPageError
from fetchplan.planner.metadata import UnusableMetadata
from fetchplan.planner.necessary import DEPENDENCY_LIMIT, Necessary
from fetchplan.planner.overrides import Overrides
from fetchplan.planner.target import TargetEnv

__all__ = [
    "PYTHON",
    "UNUSABLE",
    "DependencyURL",
    "Finder",
    "PlanProvider",
    "Req",
    "is_pinned",
    "iter_matches",
    "make_identifier",
    "split_identifier",
]

log = logging.getLogger(__name__)

PYTHON = "<python>"
CONFLICT_PROMOTION = 5
"""Conflicts a project takes part in (unpinned) before it is pinned ahead of others (pip's)."""
UNUSABLE = "<unusable>"
"""What a candidate whose metadata cannot be prepared depends on: it has no candidates, so
the resolver drops that candidate and goes on (pip and uv skip such a version too). A
candidate that cannot be part of any solution depends on it too, with why."""
LOOKAHEAD = 8
"""Versions of a project whose metadata is fetched ahead once the resolver is past its first
choice: it is then going through the versions one by one, each rejected in a moment once its
metadata is in (a hundred fastapi versions, on the FastAPI template)."""
_REASON_LIMIT = 300
"""Characters of a why-not kept in a reason built from another (a chain stays one line)."""


@dataclass(frozen=True, slots=True)
class _Dead:
    """Why a candidate can be part of no solution."""

    reason: str
    """The whole reason, for messages: ``requires x>=2, which the user's x<2 excludes``."""
    cause: str
    """The end of the chain, naming its candidate: ``c 2.0 requires b>=3, which the user's
    b<2 excludes`` (what many dead versions of a project share, for a short message)."""
    native: bool
    """True when resolvelib sees the clash itself as soon as the candidate's dependencies are
    added (a requirement against the user's own on the same identifier, or a constraint):
    the real dependencies are then given, so a failure is explained as the clash it is."""


class DependencyURL(Exception):
    """A candidate's dependency is a direct reference (``dep @ URL`` in its Requires-Dist)
    that the planning run has not prepared: pip and uv follow it, so the planner prepares it
    and resolves again (:mod:`.planning`). Deliberately not a
    :class:`~fetchplan.errors.FetchplanError`, which the provider takes for an unusable
    candidate."""

    def __init__(self, parent: str, requirement: Requirement) -> None:
        super().__init__(f"{parent} requires {requirement}")
        self.parent = parent
        self.requirement = requirement


class Finder(Protocol):
    """What the provider needs; :class:`fetchplan.planner.prefetch.PrefetchFinder` is one."""

    def project(self, name: NormalizedName) -> ProjectCandidates:
        """Every usable candidate of ``name`` (blocks until known)."""
        ...

    def metadata(self, candidate: Candidate) -> DistMetadata:
        """The core metadata of ``candidate``'s file (blocks until known)."""
        ...

    def prefetch(
        self,
        name: NormalizedName,
        specifier: SpecifierSet,
        extras: frozenset[str] = frozenset(),
    ) -> None:
        """Start fetching ``name``'s page and its likely candidate's metadata (and, with
        ``extras``, what those extras require); never blocks."""
        ...

    def prefetch_metadata(self, candidate: Candidate) -> None:
        """Start fetching ``candidate``'s metadata; never blocks."""
        ...

    def searched(self) -> Sequence[str]:
        """The index and find-links URLs consulted, for error messages."""
        ...


def make_identifier(name: str, extras: Iterable[str] = ()) -> str:
    ordered = sorted({canonicalize_name(e) for e in extras})
    return f"{name}[{','.join(ordered)}]" if ordered else name


def split_identifier(identifier: str) -> tuple[NormalizedName, frozenset[str]]:
    name, _, rest = identifier.partition("[")
    extras = frozenset(e for e in rest.rstrip("]").split(",") if e) if rest else frozenset()
    return cast(NormalizedName, name), extras


@dataclass(frozen=True, slots=True)
class Req:
    """A requirement as the resolver sees it: markers already evaluated for the target."""

    name: NormalizedName
    specifier: SpecifierSet
    extras: frozenset[str] = frozenset()
    text: str = ""
    origin: str | None = None
    """Where it was stated: ``"name version"`` of the depending candidate, or the user's file
    and line (``None`` when unknown)."""
    via: frozenset[str] = frozenset()
    """The extras of the depending candidate that bring this requirement (for messages)."""
    cause: str = ""
    """For the requirement of a candidate no solution can hold: the end of the chain of why
    (see ``text``), shared by the versions that fail for one reason."""

    @property
    def identifier(self) -> str:
        if self.name == PYTHON:
            return PYTHON
        return make_identifier(self.name, self.extras)

    @classmethod
    def from_requirement(cls, requirement: Requirement, origin: str | None = None) -> Req:
        return cls(
            name=canonicalize_name(requirement.name),
            specifier=requirement.specifier,
            extras=frozenset(canonicalize_name(e) for e in requirement.extras),
            text=_requirement_text(requirement),
            origin=origin,
        )

    def __str__(self) -> str:
        return self.text or f"{self.identifier}{self.specifier}"


def _requirement_text(requirement: Requirement) -> str:
    """The requirement without its marker (already evaluated), for messages."""
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    return f"{requirement.name}{extras}{requirement.specifier}"


def is_pinned(specifier: SpecifierSet) -> bool:
    """True when ``specifier`` names exactly one version (``==X`` without wildcard, ``===X``)."""
    return any(
        (s.operator == "==" and not s.version.endswith(".*")) or s.operator == "==="
        for s in specifier
    )


def iter_matches(
    found: ProjectCandidates,
    specifier: SpecifierSet,
    *,
    pre: bool,
    exclude: Collection[Version] = frozenset(),
) -> Iterator[Candidate]:
    """The candidates pip would consider for ``specifier``, newest first, made as they are
    reached: pre-release and yanked rules applied as pip applies them to the target's usable
    versions, ``exclude``'s versions left out after that.

    pip filters the usable candidates; this filters the versions first and decides each one
    only when the iteration gets to it, so a resolver taking the first match decides one
    version. Where pip's rules depend on the usable set (no usable final release lets the
    pre-releases in; every match yanked lets a pinned yanked one in), the iteration goes on
    to find out, with the same result.
    """
    first: list[Version] = []
    yanked: list[Candidate] = []
    usable = unyanked = False
    for version in specifier.filter(found.versions, prereleases=True if pre else None):
        first.append(version)
        candidate = found.candidate(version)
        if candidate is None:
            continue
        usable = True
        if candidate.yanked:
            yanked.append(candidate)
            continue
        unyanked = True
        if version not in exclude:
            yield candidate
    if not usable:
        # The releases matched were finals, none usable here: pip, which filters only the
        # usable versions, would have seen no final release and taken the pre-releases.
        seen = set(first)
        for version in specifier.filter(found.versions, prereleases=True):
            if version in seen:
                continue
            candidate = found.candidate(version)
            if candidate is None:
                continue
            if candidate.yanked:
                yanked.append(candidate)
                continue
            unyanked = True
            if version not in exclude:
                yield candidate
    if yanked and not unyanked and is_pinned(specifier):
        yield from (c for c in yanked if c.version not in exclude)


def preferred_first(
    matches: Iterator[Candidate], preferred: Collection[Version]
) -> Iterator[Candidate]:
    """``matches`` (newest first) with the newest of the ``preferred`` versions among them
    moved to the front: an earlier plan's pin is kept while it still matches. The versions
    newer than it are decided to get there (file choice only: no metadata is fetched); a
    malformed file met on the way is raised after the versions before it."""
    if not preferred:
        yield from matches
        return
    held: list[Candidate] = []
    try:
        for candidate in matches:
            if candidate.version in preferred:
                yield candidate
                break
            held.append(candidate)
    except IndexPageError:
        # A malformed file before any preferred version: raised where the resolver would
        # have met it, after the versions before it.
        yield from held
        raise
    yield from held
    yield from matches


class PlanProvider(AbstractProvider[Req, Candidate, str]):
    """resolvelib provider over a :class:`Finder`, for one target environment."""

    def __init__(
        self,
        finder: Finder,
        target: TargetEnv,
        *,
        pre: bool = False,
        prefer_binary: bool = False,
        constraints: Mapping[NormalizedName, SpecifierSet] | None = None,
        overrides: Overrides | None = None,
        no_deps: bool = False,
        preferred: Mapping[NormalizedName, Sequence[Version]] | None = None,
        direct: Callable[[NormalizedName], bool] = lambda _name: False,
        url_conflict: Callable[[NormalizedName, Requirement, str], str | None] = (
            lambda _name, _requirement, _parent: None
        ),
    ) -> None:
        self.finder = finder
        self.direct = direct
        """Whether a direct reference of the planning run names the project."""
        self.url_conflict = url_conflict
        """Why a parent's ``name @ URL`` names another file than the project's direct
        reference (pip and uv refuse two URLs for one project), or None."""
        self.overrides = overrides or Overrides()
        """Requirements standing in for every dependency on their projects (``--override``)."""
        self.no_deps = no_deps
        """Candidates bring no dependencies (``--no-deps``), only their Python requirement."""
        self.preferred = dict(preferred or {})
        """Versions tried first where they match (the pins kept from an earlier plan)."""
        self.target = target
        self.pre = pre
        self.prefer_binary = prefer_binary
        self.constraints = dict(constraints or {})
        self._warned: set[tuple[str, str]] = set()
        self._requested: dict[str, int] = {}
        self._conflicts: dict[str, int] = {}
        self._promoted: set[str] = set()
        self.unusable: dict[tuple[NormalizedName, Version], str] = {}
        """Versions whose metadata could not be prepared, with why (for error messages)."""
        self._root_by_identifier: dict[str, SpecifierSet] = {}
        self._root_by_name: dict[NormalizedName, SpecifierSet] = {}
        self._root_text: dict[NormalizedName, str] = {}
        self._dead: dict[tuple[str, Version], _Dead] = {}
        self._deps: dict[tuple[str, Version], list[Req]] = {}
        # A dependency's newest version known to be holdable, with the specifier it was
        # found under; keyed by the Req's identity (each kept alive in ``_deps``).
        self._witness: dict[int, tuple[Req, SpecifierSet, SpecifierSet, Version | None]] = {}
        # resolvelib asks on every round whether each pin still satisfies each requirement on
        # it: tens of thousands of SpecifierSet.contains calls over a few thousand pairs.
        # Keyed by identity (hashing a SpecifierSet costs more than the check); each entry
        # keeps its objects alive, so an id is never reused for another object meanwhile.
        self._satisfies: dict[tuple[int, int], tuple[SpecifierSet, Version, bool]] = {}
        self._python = Candidate(
            name=cast(NormalizedName, PYTHON), version=target.python_version, link=None
        )
        self.necessary = Necessary(roots={})
        """What every solution holds, learned from the metadata met (see
        :mod:`fetchplan.planner.necessary`); looked into again after a conflict."""
        self._derived_at: tuple[int, int] = (0, 0)

    def identify(self, requirement_or_candidate: Req | Candidate) -> str:
        if isinstance(requirement_or_candidate, Req):
            return requirement_or_candidate.identifier
        if requirement_or_candidate.name == PYTHON:
            return PYTHON
        return make_identifier(requirement_or_candidate.name, requirement_or_candidate.extras)

    def set_requested(self, requirements: Iterable[Req]) -> None:
        """The user's requirements: their order breaks ties in :meth:`get_preference`, and
        what they exclude no candidate can require (see :meth:`get_dependencies`).

        A requirement on ``a[x]`` limits every identifier of ``a``: the extras' candidate
        depends on ``a`` at its own version, so ``a`` and ``a[y]`` take that version too.
        """
        for req in requirements:
            self._requested.setdefault(req.identifier, len(self._requested))
            if req.name in (PYTHON, UNUSABLE):
                continue
            self._root_by_identifier[req.identifier] = (
                self._root_by_identifier.get(req.identifier, SpecifierSet()) & req.specifier
            )
            self._root_by_name[req.name] = (
                self._root_by_name.get(req.name, SpecifierSet()) & req.specifier
            )
            if req.specifier:
                shown = self._root_text.get(req.name)
                self._root_text[req.name] = f"{shown} and {req}" if shown else str(req)
        roots = {}
        for name, specifier in self._root_by_name.items():
            constraint = self.constraints.get(name)
            roots[name] = specifier & constraint if constraint is not None else specifier
        texts = {name: self._root_text.get(name, name) for name in roots}
        self.necessary = Necessary(roots=roots, root_text=texts)

    def narrow_requirement_selection(
        self,
        identifiers: Iterable[str],
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[RequirementInformation[Req, Candidate]]],
        backtrack_causes: Sequence[RequirementInformation[Req, Candidate]],
    ) -> Iterable[str]:
        """What to pin next, narrowed as pip narrows it: the target's Python alone when it is
        among them; else the projects of the current conflict (its requirements and their
        parents), as a resolution needs that conflict settled first; else the projects
        promoted by taking part in many conflicts; else all of them.

        Causes are matched by project name, so ``a[x]`` counts when ``a`` is in conflict.
        A conflict is also when what every solution holds is looked into again, from what
        has been learned since (see :meth:`_derive`).
        """
        if backtrack_causes:
            self._derive()
        in_conflict: set[str] = set()
        for info in backtrack_causes:
            in_conflict.add(info.requirement.name)
            if info.parent is not None:
                in_conflict.add(info.parent.name)
        for name in in_conflict:
            if name not in self._promoted and not any(
                split_identifier(i)[0] == name for i in resolutions
            ):
                self._conflicts[name] = self._conflicts.get(name, 0) + 1
                if self._conflicts[name] >= CONFLICT_PROMOTION:
                    self._promote(name, information)
        current: list[str] = []
        promoted: list[str] = []
        for identifier in identifiers:
            if identifier == PYTHON:
                return [identifier]
            name = split_identifier(identifier)[0]
            if name in in_conflict:
                current.append(identifier)
            elif name in self._promoted:
                promoted.append(identifier)
        return current or promoted or identifiers

    def _promote(
        self,
        name: str,
        information: Mapping[str, Iterator[RequirementInformation[Req, Candidate]]],
    ) -> None:
        """Promote ``name``, and the projects whose requirements bring it in (up to the
        user's): a project only enters the resolution with its parent, so pinning the parents
        early is what lets the conflict be settled before unrelated pins pile up."""
        pending = [name]
        while pending:
            current = pending.pop()
            if current in self._promoted:
                continue
            self._promoted.add(current)
            for identifier, infos in information.items():
                if split_identifier(identifier)[0] == current:
                    pending.extend(i.parent.name for i in infos if i.parent is not None)

    def _derive(self) -> None:
        """Learn what every solution holds from the metadata known so far (once per new
        metadata or dead candidate); the candidates it rules out are then dead at once."""
        seen = (len(self._deps), len(self._dead))
        if seen == self._derived_at or self.no_deps:
            return
        self._derived_at = seen
        if self.necessary.derive(self._holdable_versions, self._known_requires):
            log.debug(
                "every solution holds: %s",
                "; ".join(str(c) for clauses in self.necessary.clauses.values() for c in clauses),
            )

    def _holdable_versions(
        self, name: NormalizedName, specifier: SpecifierSet, keep: Callable[[Version], bool]
    ) -> list[Version] | None:
        try:
            found = self.finder.project(name)
        except FetchplanError:
            return None
        if not found.found:
            return None
        constraint = self.constraints.get(name)
        if constraint is not None:
            specifier &= constraint
        held: list[Version] = []
        for version in specifier.filter(found.versions, prereleases=True):
            if (name, version) in self._dead or not keep(version):
                continue
            try:
                if found.candidate(version) is None:
                    continue
            except FetchplanError:
                return None
            held.append(version)
            if len(held) > DEPENDENCY_LIMIT:
                break
        return held

    def _known_requires(
        self, name: NormalizedName, version: Version
    ) -> dict[NormalizedName, SpecifierSet] | None:
        """The requirements of ``name`` ``version`` by project, from metadata already read,
        or read now when its file is a wheel (never a build: that is the resolver's call)."""
        deps = self._deps.get((name, version))
        if deps is None:
            candidate = self.finder.project(name).candidate(version)
            if candidate is None or candidate.link is None or candidate.link.kind != "wheel":
                return None
            try:
                metadata = self.finder.metadata(candidate)
                deps = self.dependencies_of(candidate, metadata)
            except (FetchplanError, DependencyURL):
                # A direct-reference dependency is followed only for a version the resolver
                # pins (get_dependencies), never for one this lookahead merely looks at.
                return None
            self._deps[(name, version)] = deps
        requires: dict[NormalizedName, SpecifierSet] = {}
        for dep in deps:
            if dep.name not in (PYTHON, UNUSABLE):
                requires[dep.name] = requires.get(dep.name, SpecifierSet()) & dep.specifier
        return requires

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[RequirementInformation[Req, Candidate]]],
        backtrack_causes: Sequence[RequirementInformation[Req, Candidate]],
    ) -> tuple[bool, bool, bool, bool, float, bool, str]:
        """pip's order: the target's Python, projects promoted by repeated conflicts, pinned
        (``==``), upper-bounded (``<``, ``<=``, ``~=``, ``==X.*``), then the user's own in the
        order given, then constrained before free, then by name."""
        operators: list[tuple[str, str]] = []
        for info in information[identifier]:
            operators.extend((s.operator, s.version) for s in info.requirement.specifier)
        pinned = any(op == "===" or (op == "==" and not v.endswith(".*")) for op, v in operators)
        upper = any(
            op in ("<", "<=", "~=") or (op == "==" and v.endswith(".*")) for op, v in operators
        )
        return (
            identifier != PYTHON,
            split_identifier(identifier)[0] not in self._promoted,
            not pinned,
            not upper,
            self._requested.get(identifier, math.inf),
            not operators,
            identifier,
        )

    def specifier_for(self, identifier: str, requirements: Iterable[Req]) -> SpecifierSet:
        """The combined specifier of ``requirements`` and the user's constraints."""
        name, _extras = split_identifier(identifier)
        combined = SpecifierSet()
        for req in requirements:
            combined &= req.specifier
        constraint = self.constraints.get(name)
        if constraint is not None:
            combined &= constraint
        return combined

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Req]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> Matches[Candidate]:
        reqs = list(requirements[identifier])
        bad = {c.version for c in incompatibilities[identifier]}
        if identifier == UNUSABLE:
            return []
        if identifier == PYTHON:
            ok = all(r.specifier.contains(self._python.version, prereleases=True) for r in reqs)
            return [self._python] if ok and self._python.version not in bad else []
        name, extras = split_identifier(identifier)
        specifier = self.specifier_for(identifier, reqs)
        found = self.finder.project(name)

        preferred = frozenset(self.preferred.get(name, ()))

        def matches() -> Iterator[Candidate]:
            source = preferred_first(
                iter_matches(found, specifier, pre=self.pre, exclude=bad), preferred
            )
            ahead: deque[Candidate | IndexPageError] = deque()
            for served in itertools.count():
                candidate = ahead.popleft() if ahead else next(source, None)
                if candidate is None:
                    return
                if isinstance(candidate, IndexPageError):
                    raise candidate  # where the resolver reaches it, as without looking ahead
                if served:
                    self._look_ahead(source, ahead)
                if candidate.yanked:
                    self._warn_yanked(candidate)
                yield candidate.with_extras(extras) if extras else candidate

        if self.prefer_binary:
            # Versions with a wheel first: every match is decided to know which have one.
            return sorted(
                matches(),
                key=lambda c: (
                    c.version not in preferred,
                    c.link is None or c.link.kind != "wheel",
                ),
            )
        # resolvelib calls this once and iterates as far as it needs: one version, mostly.
        return matches

    def _look_ahead(
        self, source: Iterator[Candidate], ahead: deque[Candidate | IndexPageError]
    ) -> None:
        """Queue the metadata of the next :data:`LOOKAHEAD` versions from ``source`` (kept in
        ``ahead``). Wheels only: an sdist's metadata may need its backend run, which is for
        the resolver to decide on, not a guess. A malformed file met on the way is kept in
        ``ahead`` too, to be raised only if the resolver gets that far."""
        if ahead and isinstance(ahead[-1], IndexPageError):
            return
        while len(ahead) < LOOKAHEAD:
            try:
                candidate = next(source, None)
            except IndexPageError as exc:
                ahead.append(exc)
                return
            if candidate is None:
                return
            ahead.append(candidate)
            key = (candidate.name, candidate.version)
            if (
                candidate.link is not None
                and candidate.link.kind == "wheel"
                and key not in self._deps
                and key not in self._dead
            ):
                self.finder.prefetch_metadata(candidate)

    def _warn_yanked(self, candidate: Candidate) -> None:
        key = (candidate.name, str(candidate.version))
        if key not in self._warned:
            self._warned.add(key)
            assert candidate.link is not None
            reason = candidate.link.yanked_reason or "no reason given"
            log.warning("%s %s is yanked (%s)", candidate.name, candidate.version, reason)

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        specifier, version = requirement.specifier, candidate.version
        key = (id(specifier), id(version))
        known = self._satisfies.get(key)
        if known is None:
            known = (specifier, version, specifier.contains(version, prereleases=True))
            self._satisfies[key] = known
        return known[2]

    def dependencies_of(self, candidate: Candidate, metadata: DistMetadata) -> list[Req]:
        """The requirements ``candidate`` brings, markers evaluated for the target (pure)."""
        parent = f"{candidate.name} {candidate.version}"
        deps: list[Req] = []
        if candidate.extras:
            deps.append(
                Req(
                    name=candidate.name,
                    specifier=SpecifierSet(f"=={candidate.version}"),
                    text=f"{candidate.name}=={candidate.version}",
                    origin=parent,
                )
            )
            missing = candidate.extras - {canonicalize_name(e) for e in metadata.provides_extra}
            for extra in sorted(missing):
                log.warning("%s does not provide the extra '%s'", parent, extra)
            if self.no_deps:
                return deps
            for requirement in metadata.requires_dist:
                if requirement.marker is None or self.target.evaluate(requirement.marker):
                    deps.extend(self._check_url(requirement, parent))
                    deps.extend(self._overridden(requirement, parent))
                    continue
                if self.target.evaluate(requirement.marker, candidate.extras):
                    deps.extend(self._check_url(requirement, parent))
                    marker = requirement.marker
                    via = frozenset(
                        e for e in candidate.extras if self.target.evaluate(marker, frozenset({e}))
                    )
                    deps.extend(
                        replace(dep, via=via or candidate.extras)
                        for dep in self._overridden(requirement, parent)
                    )
            return deps
        if metadata.requires_python is not None:
            deps.append(
                Req(
                    name=cast(NormalizedName, PYTHON),
                    specifier=metadata.requires_python,
                    text=f"Python{metadata.requires_python}",
                    origin=parent,
                )
            )
        if self.no_deps:
            return deps
        for requirement in metadata.requires_dist:
            if self.target.evaluate(requirement.marker):
                deps.extend(self._check_url(requirement, parent))
                deps.extend(self._overridden(requirement, parent))
        return deps

    def _check_url(self, requirement: Requirement, parent: str) -> list[Req]:
        """Raise :class:`DependencyURL` for a ``dep @ URL`` no direct reference prepared; for
        one naming another file than the project's direct reference, a requirement nothing
        meets, saying so (pip's resolver then tries another version of the parent)."""
        if requirement.url is None:
            return []
        if self.overrides.replace(requirement, self.target.evaluate) is not None:
            return []  # --override stands in for it
        name = canonicalize_name(requirement.name)
        if not self.direct(name):
            raise DependencyURL(parent, requirement)
        conflict = self.url_conflict(name, requirement, parent)
        if conflict is None:
            return []
        unmet = cast(NormalizedName, UNUSABLE)
        return [Req(unmet, SpecifierSet(), text=conflict, origin=parent, cause=conflict)]

    def _overridden(self, requirement: Requirement, parent: str) -> list[Req]:
        """``requirement`` of ``parent`` as a Req, or what ``--override`` puts in its place."""
        replaced = self.overrides.replace(requirement, self.target.evaluate)
        if replaced is None:
            return [Req.from_requirement(requirement, parent)]
        overrides = (Req.from_requirement(override, parent) for override in replaced)
        return [replace(req, text=f"{req} (--override)") for req in overrides]

    def get_dependencies(self, candidate: Candidate) -> list[Req]:
        """``candidate``'s requirements, or, when it can be part of no solution, one
        requirement that nothing satisfies, saying why.

        A candidate can be part of no solution when its metadata cannot be prepared, or when
        one of its requirements is met by no version that the user's requirements and
        constraints allow and that could itself be held. resolvelib would find each of these
        out again after every backtrack past the pin that brought the candidate in (trying
        every version of every project in between): the FastAPI template's newest
        ``fastapi[standard]`` needs a ``fastapi-cloud-cli`` that needs ``sentry-sdk>=2.20``
        where the user asks for ``sentry-sdk<2``, and each of some fifty ``fastapi``
        versions would have tried some thirty ``fastapi-cli`` versions each trying forty
        ``fastapi-cloud-cli`` versions. Learned once, each of them is one step.
        """
        if candidate.name == PYTHON:
            return []
        key = (self.identify(candidate), candidate.version)
        # The base project's version dead is every extras' dead: they depend on it.
        base = self._dead.get((candidate.name, candidate.version))
        if base is not None and not base.native:
            return [self._cannot_hold(candidate, base)]
        deps = self._deps.get(key)
        if deps is None:
            try:
                metadata = self.finder.metadata(candidate)
            except UnusableMetadata as exc:
                return [self._unusable(candidate, exc)]
            deps = self.dependencies_of(candidate, metadata)
            self._deps[key] = deps
            for dep in deps:
                if dep.name != PYTHON:
                    self.finder.prefetch(dep.name, dep.specifier, dep.extras)
        dead = self._dead.get(key) or self._learn(key, deps)
        if dead is None or dead.native:
            return deps
        return [self._cannot_hold(candidate, dead)]

    def _learn(self, key: tuple[str, Version], deps: Sequence[Req]) -> _Dead | None:
        """Whether the candidate of ``key`` with ``deps`` can be part of no solution (kept)."""
        for dep in deps:
            if dep.name in (PYTHON, UNUSABLE):
                continue
            try:
                dead = self._unholdable(dep)
            except FetchplanError:
                # A page that cannot be read, or a malformed file: resolvelib meets it (or
                # not, if another requirement rules the candidate out first), as without this.
                continue
            if dead is not None:
                if not dead.cause:
                    dead = replace(dead, cause=f"{key[0]} {key[1]} {dead.reason}")
                self._dead[key] = dead
                log.debug("%s %s can be part of no solution: %s", *key, dead.reason)
                return dead
        return None

    def _unholdable(self, dep: Req) -> _Dead | None:
        """Why no version could meet ``dep``, or None when one may.

        Versions are read as resolvelib could see them in some state, pre-releases and
        yanked ones included, under the user's requirements on the project and its
        constraints; the newest one found holdable is remembered and checked first.
        """
        known = self._witness.get(id(dep))
        if known is None:
            native = dep.specifier & self._root_by_identifier.get(dep.identifier, SpecifierSet())
            constraint = self.constraints.get(dep.name)
            if constraint is not None:
                native &= constraint
            allowed = native & self._root_by_name.get(dep.name, SpecifierSet())
        else:
            _dep, native, allowed, held = known
            if (
                held is not None
                and not self._is_dead(dep, held)
                and self.necessary.allows(dep.name, held)
            ):
                return None
        found = self.finder.project(dep.name)
        if not found.found:
            return None  # resolvelib names the missing project, as it should
        first_dead: Version | None = None
        ruled_out = None
        for version in allowed.filter(found.versions, prereleases=True):
            if found.candidate(version) is None:
                continue
            clause = self.necessary.excluding(dep.name, version)
            if clause is not None:
                ruled_out = ruled_out or clause
                continue
            if not self._is_dead(dep, version):
                self._witness[id(dep)] = (dep, native, allowed, version)
                return None
            if first_dead is None:
                first_dead = version
        self._witness[id(dep)] = (dep, native, allowed, None)
        if first_dead is not None:
            example = self._dead_of(dep, first_dead)
            return _Dead(
                f"requires {dep}; no version of {dep.name} can be used: "
                f"{dep.name} {first_dead} {example.reason[:_REASON_LIMIT]}",
                cause=example.cause,
                native=False,
            )
        if ruled_out is not None:
            return _Dead(
                f"requires {dep}, but {self.necessary.explain(ruled_out)}", cause="", native=False
            )
        # No version is allowed at all. resolvelib meets that clash itself when no version
        # passes the requirements it holds on this very identifier (the user's own on it
        # and the constraints), and explains it as the clash it is.
        if not any(
            found.candidate(v) is not None for v in native.filter(found.versions, prereleases=True)
        ):
            return _Dead(
                f"requires {dep}, which no usable version satisfies", cause="", native=True
            )
        excluded = self._root_text.get(dep.name, str(allowed))
        return _Dead(
            f"requires {dep}, which the user's {excluded} excludes", cause="", native=False
        )

    def _is_dead(self, dep: Req, version: Version) -> bool:
        return (dep.identifier, version) in self._dead or (dep.name, version) in self._dead

    def _dead_of(self, dep: Req, version: Version) -> _Dead:
        return self._dead.get((dep.identifier, version)) or self._dead[(dep.name, version)]

    def _cannot_hold(self, candidate: Candidate, dead: _Dead) -> Req:
        return Req(
            name=cast(NormalizedName, UNUSABLE),
            specifier=SpecifierSet(),
            text=dead.reason,
            origin=f"{candidate.name} {candidate.version}",
            cause=dead.cause,
        )

    def _unusable(self, candidate: Candidate, error: UnusableMetadata) -> Req:
        key = (candidate.name, candidate.version)
        reason = str(error)
        if key not in self.unusable:
            self.unusable[key] = reason
            # Every identifier of the project at this version: its extras need the base.
            self._dead[key] = _Dead(reason, cause=reason, native=False)
            log.info("%s %s is unusable, trying another version: %s", *key, reason)
        return self._cannot_hold(candidate, _Dead(reason, cause=reason, native=False))
