"""``--override FILE``: requirements that replace every requirement on their project, uv's
semantics.

An override file is a requirements file (hashes and options other than nested ``-r`` are
refused: an override says which versions, not which files). Wherever the graph states a
requirement on an overridden project, whether the user's own or a dependency's, the
requirement is dropped and the overrides on that project stand in its place; an override
with a marker stands in only where its marker holds, so a requirement whose overrides all
have false markers is dropped altogether (uv joins the two markers). Constraints are left as
they are. The overrides are recorded in the plan's inputs, so that re-planning with the same
file gives the same plan.

:func:`overrides_from` is pure (parsed requirements); :func:`read_overrides` reads files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from fetchplan.errors import InputError
from fetchplan.planner.reqfile import ParsedRequirement, RequirementSet, parse_requirements_file

__all__ = ["Overrides", "overrides_from", "read_override_sets", "read_overrides"]


@dataclass(frozen=True, slots=True)
class Overrides:
    """The overriding requirements, by canonical project name, in file order."""

    by_name: Mapping[NormalizedName, tuple[Requirement, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def replace(
        self, requirement: Requirement, evaluate: Callable[[Marker | None], bool]
    ) -> tuple[Requirement, ...] | None:
        """What stands in for ``requirement`` (whose own marker holds): the overrides on its
        project whose markers ``evaluate`` true, or None when the project is not overridden."""
        found = self.by_name.get(canonicalize_name(requirement.name))
        if found is None:
            return None
        return tuple(override for override in found if evaluate(override.marker))

    def texts(self) -> tuple[str, ...]:
        """Every override as written, for the plan's inputs."""
        return tuple(str(r) for found in self.by_name.values() for r in found)

    def apply_to_user(
        self, requirements: Iterable[ParsedRequirement]
    ) -> tuple[ParsedRequirement, ...]:
        """The user's requirements with those on overridden projects replaced: each override
        takes the replaced line's place, hashes and source, under both markers."""
        result: list[ParsedRequirement] = []
        for parsed in requirements:
            found = self.by_name.get(canonicalize_name(parsed.requirement.name))
            if found is None or parsed.constraint:
                result.append(parsed)
                continue
            for override in found:
                result.append(
                    replace(parsed, requirement=_joined(override, parsed.requirement.marker))
                )
        return tuple(result)


def _joined(override: Requirement, marker: Marker | None) -> Requirement:
    """``override`` restricted to where ``marker`` holds too."""
    if marker is None:
        return override
    joined = Requirement(str(override))
    joined.marker = (
        marker if override.marker is None else Marker(f"({override.marker}) and ({marker})")
    )
    return joined


def read_overrides(paths: Sequence[Path]) -> Overrides:
    """The overrides of the files at ``paths`` (requirements files, read as pip reads them)."""
    return read_override_sets(parse_requirements_file(path) for path in paths)


def overrides_from(requirements: Iterable[ParsedRequirement]) -> Overrides:
    """The :class:`Overrides` of requirements read from override files.

    Raises :class:`InputError` naming the line for one with ``--hash`` (an override picks
    versions; the files are still checked against the index's hashes).
    """
    by_name: dict[NormalizedName, list[Requirement]] = {}
    for parsed in requirements:
        if parsed.hashes:
            raise InputError(
                f"{parsed.source}: an override takes no --hash: it chooses versions, and the "
                "files are checked as any other"
            )
        by_name.setdefault(canonicalize_name(parsed.requirement.name), []).append(
            parsed.requirement
        )
    return Overrides({name: tuple(found) for name, found in by_name.items()})


def read_override_sets(sets: Iterable[RequirementSet]) -> Overrides:
    """The overrides of parsed override files: their requirements (constraints a file names
    with ``-c`` count too, being requirements on versions)."""
    return overrides_from(
        parsed for found in sets for parsed in (*found.requirements, *found.constraints)
    )
