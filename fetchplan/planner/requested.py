"""What each target is asked to install: the requirements, constraints and ``--hash`` values
whose markers apply to it, and the checks of hash-checking mode (pip's ``--require-hashes``).

Pure: requirement sets and targets in, values out, an :class:`InputError` naming the line at
fault. Hashes are about what gets installed, so build requirements never come through here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from fetchplan.errors import InputError
from fetchplan.planner import reqfile
from fetchplan.planner.provider import Req, is_pinned
from fetchplan.planner.resolve import Resolution
from fetchplan.planner.target import TargetEnv

__all__ = [
    "AllowedHashes",
    "TargetRequirements",
    "check_hashes_given",
    "check_pinned",
    "merged_hashes",
    "requirements_for",
]

log = logging.getLogger(__name__)

AllowedHashes = Mapping[NormalizedName, Mapping[str, frozenset[str]]]
"""``--hash`` values: project -> algorithm -> lower-case hex digests."""


@dataclass(frozen=True, slots=True)
class TargetRequirements:
    """One target's share of the requirement set."""

    requirements: list[Req]
    constraints: dict[NormalizedName, SpecifierSet]
    hashes: dict[NormalizedName, dict[str, frozenset[str]]]


def requirements_for(
    requirement_set: reqfile.RequirementSet, target: TargetEnv
) -> TargetRequirements:
    """The requirements, constraints (one specifier per project) and ``--hash`` values of
    ``requirement_set`` whose markers match ``target``."""
    reqs: list[Req] = []
    constraints: dict[NormalizedName, SpecifierSet] = {}
    hashes: dict[NormalizedName, dict[str, set[str]]] = {}
    for parsed in (*requirement_set.requirements, *requirement_set.constraints):
        requirement = parsed.requirement
        if requirement.url is not None and parsed.direct is None:
            raise InputError(
                f"{parsed.source}: direct URL requirements ({requirement.name} @ ...) are not "
                "supported; put the file on an index or in a --find-links directory"
            )
        if not target.evaluate(requirement.marker):
            log.info(
                "ignoring %s (%s): markers do not match the target", requirement, parsed.source
            )
            continue
        name = canonicalize_name(requirement.name)
        for algo, values in parsed.hashes.items():
            hashes.setdefault(name, {}).setdefault(algo, set()).update(v.lower() for v in values)
        if parsed.constraint:
            constraints[name] = constraints.get(name, SpecifierSet()) & requirement.specifier
        else:
            reqs.append(Req.from_requirement(requirement, origin=parsed.source))
    frozen = {
        name: {algo: frozenset(values) for algo, values in by_algo.items()}
        for name, by_algo in hashes.items()
    }
    return TargetRequirements(reqs, constraints, frozen)


def merged_hashes(
    per_target: Iterable[TargetRequirements],
) -> dict[NormalizedName, dict[str, frozenset[str]]]:
    """Every target's ``--hash`` values together: a file any of them allows is allowed."""
    merged: dict[NormalizedName, dict[str, frozenset[str]]] = {}
    for wanted in per_target:
        for name, by_algo in wanted.hashes.items():
            into = merged.setdefault(name, {})
            for algo, values in by_algo.items():
                into[algo] = into.get(algo, frozenset()) | values
    return merged


def check_pinned(requirement_set: reqfile.RequirementSet) -> None:
    """Hash-checking mode: every requirement must be pinned with ``==``, its own or a
    constraint's (pip's rule: a hashed lock file given with ``-c`` keeps an unpinned
    requirements file in hash-checking mode)."""
    pinned_by_constraint = {
        c.name for c in requirement_set.constraints if is_pinned(c.requirement.specifier)
    }
    for parsed in requirement_set.requirements:
        if parsed.name in pinned_by_constraint:
            continue
        # A direct reference names its file: there is nothing to pin.
        if parsed.direct is None and not is_pinned(parsed.requirement.specifier):
            raise InputError(
                f"{parsed.source}: in hash-checking mode every requirement must be pinned "
                f"with ==, but {parsed.requirement} is not"
            )


def check_hashes_given(
    resolution: Resolution,
    allowed: AllowedHashes,
    direct: frozenset[NormalizedName] = frozenset(),
) -> None:
    """Hash-checking mode: every resolved project must have a ``--hash``, but those a direct
    reference names (its file is named, and hashed while planning when it has no hash)."""
    for name, candidate in resolution.pins.items():
        if name not in allowed and name not in direct:
            raise InputError(
                f"hash-checking mode: {name} {candidate.version} has no --hash in the "
                "requirements (every dependency needs one, as with pip --require-hashes)"
            )
