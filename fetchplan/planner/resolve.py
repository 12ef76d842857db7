"""Run resolvelib over the provider, and turn its failures into one-line explanations.

Failures are explained as pip does: a project no index knows; a requirement no version
satisfies (naming the versions rejected and why: Requires-Python, yanked, tags, pre-release);
or a conflict, naming who asked for what.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version
from resolvelib import BaseReporter, ResolutionImpossible, ResolutionTooDeep, Resolver
from resolvelib.structs import RequirementInformation

from fetchplan.errors import FetchplanError
from fetchplan.planner.candidates import Candidate, ProjectCandidates, Rejection
from fetchplan.planner.index import IndexPageError
from fetchplan.planner.provider import (
    PYTHON,
    UNUSABLE,
    PlanProvider,
    Req,
    is_pinned,
    iter_matches,
    make_identifier,
    split_identifier,
)
from fetchplan.planner.timings import Timings

__all__ = [
    "NoMatchingVersion",
    "Resolution",
    "ResolutionConflict",
    "ResolutionError",
    "UnknownProject",
    "resolve",
]

log = logging.getLogger(__name__)

MAX_ROUNDS = 20000
_LIST_LIMIT = 8
_HISTORY = 32

Info = RequirementInformation[Req, Candidate]


class ResolutionError(FetchplanError):
    """The requirements cannot be satisfied; ``str()`` says why in one line."""


class UnknownProject(ResolutionError):
    """No index or find-links location has the project."""


class NoMatchingVersion(ResolutionError):
    """The project exists but no usable version satisfies a requirement."""


class ResolutionConflict(ResolutionError):
    """Requirements on one project contradict each other."""


@dataclass(frozen=True, slots=True)
class Resolution:
    """The chosen candidate of every project, the extras asked of it, and what the user named."""

    pins: Mapping[NormalizedName, Candidate]
    extras: Mapping[NormalizedName, frozenset[str]]
    requested: frozenset[NormalizedName]
    rounds: int


class _Reporter(BaseReporter[Req, Candidate, str]):
    def __init__(self) -> None:
        self.rounds = 0
        self.conflicts: list[Collection[Info]] = []
        """The causes of the latest conflicts met while backtracking, oldest first."""

    def starting_round(self, index: int) -> None:
        self.rounds = index + 1

    def resolving_conflicts(self, causes: Collection[Info]) -> None:
        self.conflicts.append(list(causes))
        del self.conflicts[:-_HISTORY]


def resolve(
    provider: PlanProvider,
    requirements: Sequence[Req],
    *,
    timings: Timings | None = None,
    max_rounds: int = MAX_ROUNDS,
) -> Resolution:
    """Resolve ``requirements`` (markers already applied) to one candidate per project."""
    for req in requirements:
        provider.finder.prefetch(
            req.name, provider.specifier_for(req.identifier, [req]), req.extras
        )
    provider.set_requested(requirements)
    reporter = _Reporter()
    resolver: Resolver[Req, Candidate, str] = Resolver(provider, reporter)
    cpu, wall = time.thread_time(), time.monotonic()
    try:
        result = resolver.resolve(requirements, max_rounds=max_rounds)
    except ResolutionImpossible as exc:
        raise explain(provider, exc.causes, reporter.conflicts) from None
    except ResolutionTooDeep:
        raise ResolutionError(
            f"resolution gave up after {max_rounds} rounds of backtracking; "
            "pin some versions to narrow the search"
        ) from None
    finally:
        if timings is not None:
            timings.set_resolver(
                cpu_seconds=time.thread_time() - cpu,
                started=wall,
                ended=time.monotonic(),
                rounds=reporter.rounds,
            )
    pins: dict[NormalizedName, Candidate] = {}
    extras: dict[NormalizedName, set[str]] = defaultdict(set)
    for identifier, candidate in result.mapping.items():
        if identifier == PYTHON:
            continue
        name, wanted = split_identifier(identifier)
        if wanted:
            extras[name] |= wanted
        else:
            pins[name] = candidate
    return Resolution(
        pins=dict(sorted(pins.items())),
        extras={name: frozenset(values) for name, values in sorted(extras.items())},
        requested=frozenset(req.name for req in requirements),
        rounds=reporter.rounds,
    )


def _parent(info: Info) -> str:
    """The depending candidate as pip names it, with the extras that bring the requirement."""
    parent = info.parent
    assert parent is not None
    extras = info.requirement.via or parent.extras
    shown = f"[{','.join(sorted(extras))}]" if extras else ""
    return f"{parent.name}{shown} {parent.version}"


def _who(info: Info) -> str:
    req = info.requirement
    if req.name == UNUSABLE and info.parent is not None:
        return f"{info.parent.name} {info.parent.version} is unusable ({req})"
    if info.parent is None:
        origin = f" ({req.origin})" if req.origin else ""
        return f"the user requested {req}{origin}"
    return f"{_parent(info)} depends on {req}"


def explain(
    provider: PlanProvider, causes: Collection[Info], history: Sequence[Collection[Info]] = ()
) -> ResolutionError:
    """The error to show for a failed resolution with these ``causes``.

    ``history`` holds the causes of earlier conflicts: when the last failure is only a
    missing project that an older version (tried while backtracking) depends on, the clash
    that sent the resolver back is the one to show.
    """
    error = _explain(provider, causes)
    if isinstance(error, UnknownProject) and all(i.parent is not None for i in causes):
        for earlier in reversed(history):
            previous = _explain(provider, earlier)
            if isinstance(previous, ResolutionConflict):
                return ResolutionConflict(f"{previous}; and older versions fail too: {error}")
    return error


def _explain(provider: PlanProvider, causes: Collection[Info]) -> ResolutionError:
    by_identifier: dict[str, list[Info]] = defaultdict(list)
    for info in causes:
        by_identifier[provider.identify(info.requirement)].append(info)
    unknown: dict[str, str] = {}
    for identifier, infos in by_identifier.items():
        if identifier in (PYTHON, UNUSABLE):
            continue
        name, _extras = split_identifier(identifier)
        found = provider.finder.project(name)
        missing = _missing_message(provider, name, found, infos[0])
        if missing is not None:
            unknown[identifier] = missing
            continue
        no_match = _first_no_match(provider, identifier, found, infos)
        if no_match is not None:
            return no_match
    if unknown:
        return _unknown_project(provider, by_identifier, unknown)
    unusable = by_identifier.get(UNUSABLE)
    if unusable and set(by_identifier) <= {UNUSABLE, PYTHON}:
        return NoMatchingVersion(_unusable_message(unusable))
    python = by_identifier.get(PYTHON)
    if python:
        return ResolutionConflict(_python_message(provider, python))
    return ResolutionConflict(_conflict_message(provider, by_identifier))


def _missing_message(
    provider: PlanProvider, name: str, found: ProjectCandidates, info: Info
) -> str | None:
    """Why project ``name`` is missing (quarantined or on no index), or None when found."""
    if found.found:
        return None
    if found.quarantined:
        where = "; ".join(
            f"{url}" + (f" ({reason})" if reason else "") for url, reason in found.quarantined
        )
        return (
            f"project '{name}' is quarantined (PEP 792: considered unsafe, e.g. malware) "
            f"on {where}: refused; needed because {_who(info)}"
        )
    searched = ", ".join(provider.finder.searched()) or "no index configured"
    return (
        f"unknown project '{name}': no index has it (searched {searched}); "
        f"needed because {_who(info)}"
    )


def _first_no_match(
    provider: PlanProvider, identifier: str, found: ProjectCandidates, infos: list[Info]
) -> NoMatchingVersion | None:
    """The error of the first requirement in ``infos`` that no usable version meets."""
    for info in infos:
        specifier = provider.specifier_for(identifier, [info.requirement])
        matching = iter_matches(found, specifier, pre=provider.pre)
        if all((c.name, c.version) in provider.unusable for c in matching):
            return NoMatchingVersion(_no_match_message(provider, found, info))
    return None


def _unknown_project(
    provider: PlanProvider, by_identifier: dict[str, list[Info]], unknown: dict[str, str]
) -> ResolutionError:
    # A missing project is the cause only when nothing else clashes: else it was met
    # while backtracking from the real conflict, which is what to show (as pip does).
    clashing = {
        i: infos
        for i, infos in by_identifier.items()
        if i not in unknown and i not in (PYTHON, UNUSABLE)
    }
    first = next(iter(unknown.values()))
    if not clashing:
        return UnknownProject(first)
    return ResolutionConflict(
        f"{_conflict_message(provider, clashing)}; and older versions fail too: {first}"
    )


def _python_message(provider: PlanProvider, python: list[Info]) -> str:
    parts = "; ".join(
        f"{i.parent.name} {i.parent.version} requires Python{i.requirement.specifier}"
        for i in python
        if i.parent is not None
    )
    return f"no candidate supports the target's Python {provider.target.python_version}: {parts}"


def _no_match_message(provider: PlanProvider, found: ProjectCandidates, info: Info) -> str:
    identifier = provider.identify(info.requirement)
    name = found.name
    specifier = provider.specifier_for(identifier, [info.requirement])
    constraint = provider.constraints.get(name)
    asked = f"{info.requirement}" + (f" (constrained to {constraint})" if constraint else "")
    rejected = _rejected_matches(provider, found, specifier)
    parts = [f"no version of {name} satisfies {asked}, which {_who_short(info)}"]
    if rejected:
        shown = ", ".join(f"{v} ({why})" for v, why in rejected[:_LIST_LIMIT])
        more = f" and {len(rejected) - _LIST_LIMIT} more" if len(rejected) > _LIST_LIMIT else ""
        parts.append(f"rejected: {shown}{more}")
    available = _usable_versions(found, _LIST_LIMIT + 1, provider.unusable)
    if available:
        parts.append(
            "usable versions: "
            + ", ".join(available[:_LIST_LIMIT])
            + (" ..." if len(available) > _LIST_LIMIT else "")
        )
    elif not rejected:
        parts.append(_nothing_usable(found))
    return "; ".join(parts)


def _rejected_matches(
    provider: PlanProvider, found: ProjectCandidates, specifier: SpecifierSet
) -> list[tuple[Version, str]]:
    """The versions ``specifier`` matches that were not taken, and why, newest first."""
    name = found.name
    rejected: list[tuple[Version, str]] = []
    matching = list(specifier.filter(found.versions, prereleases=True))
    usable = [c for v in matching if (c := found.candidate(v)) is not None]
    plain = set(
        specifier.filter([c.version for c in usable], prereleases=True if provider.pre else None)
    )
    for candidate in usable:
        why_unusable = provider.unusable.get((name, candidate.version))
        if why_unusable is not None:
            rejected.append((candidate.version, why_unusable))
        elif candidate.version not in plain:
            rejected.append((candidate.version, "pre-release; add --pre"))
        elif candidate.yanked and not is_pinned(specifier):
            assert candidate.link is not None
            why = candidate.link.yanked_reason
            rejected.append((candidate.version, f"yanked: {why}" if why else "yanked"))
    for version in matching:
        choice = found.choice(version)
        if isinstance(choice, Rejection):
            rejected.append((version, "; ".join(choice.reasons)))
    rejected.sort(key=lambda item: item[0], reverse=True)
    return rejected


def _nothing_usable(found: ProjectCandidates) -> str:
    """Why no version of ``found`` is usable at all (pip's "Ignored the following versions
    that require a different python version")."""
    ignored = _rejected_versions(found, _LIST_LIMIT + 1)
    if ignored:
        more = " ..." if len(ignored) > _LIST_LIMIT else ""
        return (
            "no version is usable at all; the index lists "
            + ", ".join(ignored[:_LIST_LIMIT])
            + more
        )
    return "the index lists no files for it"


def _usable_versions(
    found: ProjectCandidates,
    limit: int,
    unusable: Mapping[tuple[NormalizedName, Version], str] | None = None,
) -> list[str]:
    """The newest ``limit`` usable, unyanked versions, whatever the requirement asked
    (versions whose metadata could not be prepared, in ``unusable``, are not)."""
    shown: list[str] = []
    for version in found.versions:
        try:
            candidate = found.candidate(version)
        except IndexPageError:
            # A version the resolution never needed: its malformed files do not change
            # what this message is about.
            continue
        if (
            candidate is not None
            and not candidate.yanked
            and (found.name, candidate.version) not in (unusable or {})
        ):
            shown.append(str(candidate.version))
            if len(shown) == limit:
                break
    return shown


def _rejected_versions(found: ProjectCandidates, limit: int) -> list[str]:
    """The newest ``limit`` rejected versions, each with why (``1.0 (requires Python...)``)."""
    shown: list[str] = []
    for version in found.versions:
        try:
            choice = found.choice(version)
        except IndexPageError:
            continue
        if isinstance(choice, Rejection):
            shown.append(str(choice))
            if len(shown) == limit:
                break
    return shown


def _unusable_message(infos: Sequence[Info]) -> str:
    """Every version tried was unusable: say which, and why, project by project.

    Versions failing for one cause (``cause`` of their requirement: fifty fastapi versions
    each needing what one user requirement excludes) are named after the first, which says
    why in full.
    """
    by_project: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(dict)
    for info in infos:
        if info.parent is not None:
            req = info.requirement
            groups = by_project[info.parent.name]
            key = req.cause or f"{info.parent.version}: {req}"
            groups.setdefault(key, []).append((str(info.parent.version), str(req)))
    parts = []
    for name, groups in sorted(by_project.items()):
        shown = []
        for tried in list(groups.values())[:_LIST_LIMIT]:
            versions = list(dict.fromkeys(v for v, _why in tried))
            first = f"{versions[0]} ({tried[0][1]})"
            if len(versions) > 1:
                others = ", ".join(versions[1 : _LIST_LIMIT + 1])
                left = len(versions) - 1 - _LIST_LIMIT
                first += f"; {others}{f' and {left} more' if left > 0 else ''}: the same cause"
            shown.append(first)
        more = f" and {len(groups) - _LIST_LIMIT} more" if len(groups) > _LIST_LIMIT else ""
        parts.append(f"no usable version of {name}: rejected: {', '.join(shown)}{more}")
    return "; ".join(parts)


def _who_short(info: Info) -> str:
    if info.parent is None:
        origin = info.requirement.origin
        where = f" in {origin}" if origin and not origin.startswith("<") else ""
        return f"the user requested{where}"
    return f"{info.parent.name} {info.parent.version} requires"


def _conflict_message(provider: PlanProvider, by_identifier: Mapping[str, list[Info]]) -> str:
    parents = sorted(
        {
            f"{make_identifier(i.parent.name, i.parent.extras)}=={i.parent.version}"
            for infos in by_identifier.values()
            for i in infos
            if i.parent is not None
        }
    )
    reasons: list[str] = []
    for identifier, infos in by_identifier.items():
        for info in infos:
            reasons.append(_who(info))
        name, _extras = split_identifier(identifier)
        constraint = provider.constraints.get(name)
        if constraint is not None:
            reasons.append(f"a constraint limits {name} to {constraint}")
    subject = " and ".join(parents) if parents else "the requested projects"
    projects = ", ".join(sorted({split_identifier(i)[0] for i in by_identifier}))
    return f"cannot install {subject}: conflicting requirements on {projects}: " + "; ".join(
        dict.fromkeys(reasons)
    )
