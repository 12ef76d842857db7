"""What every solution must hold, derived from the user's requirements (pure).

The user's requirements name projects every solution holds. When every version of such a
project that could be held requires a project ``q``, every solution holds ``q`` too, at a
version one of those requirements allows: ``emails`` 0.6 (the only one the user allows)
requires ``premailer``, every ``premailer`` requires ``cachetools<5``, so no solution holds
a ``cachetools>=5``, and a ``rich-toolkit`` requiring it is dead wherever it appears.
resolvelib learns such a clash again for every pin it backtracks past; uv's PubGrub learns it
once. This module learns it once too, from metadata already known (or cheap to read: the
caller decides), for the provider to reject such candidates at once.

What is derived here holds in every solution, whatever the resolver's state, so it is kept
for the whole resolution.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version

__all__ = ["DEPENDENCY_LIMIT", "Clause", "Necessary", "VersionDeps"]

DEPENDENCY_LIMIT = 16
"""A project with more versions than this that could be held is not looked into: the
requirements shared by all its versions are rarely narrow, and reading them costs."""
_PASSES = 64

HoldableVersions = Callable[
    [NormalizedName, SpecifierSet, Callable[[Version], bool]], list[Version] | None
]
"""The versions of a project under a specifier that could be held (usable, none known dead,
kept by the predicate), at most :data:`DEPENDENCY_LIMIT` and one more; None when unknown."""

VersionDeps = Callable[[NormalizedName, Version], Mapping[NormalizedName, SpecifierSet] | None]
"""The requirements of a project's version by name (each name's combined), or None when
they are not known (then nothing is derived from that project)."""


@dataclass(frozen=True, slots=True)
class Clause:
    """A version of ``name`` can be held only if one of ``specifiers`` allows it."""

    name: NormalizedName
    specifiers: tuple[SpecifierSet, ...]
    parent: NormalizedName
    """The project every version of which requires one of them."""

    def allows(self, version: Version) -> bool:
        return any(s.contains(version, prereleases=True) for s in self.specifiers)

    def __str__(self) -> str:
        return " or ".join(f"{self.name}{s}" for s in self.specifiers)


@dataclass(slots=True)
class Necessary:
    """The projects every solution holds and the clauses their versions must meet."""

    roots: Mapping[NormalizedName, SpecifierSet]
    """The user's requirements and constraints on each project they name."""
    root_text: Mapping[NormalizedName, str] = field(default_factory=dict)
    clauses: dict[NormalizedName, list[Clause]] = field(default_factory=dict)
    why: dict[NormalizedName, str] = field(default_factory=dict)
    """For each project found necessary: who needs it (for messages)."""

    def allows(self, name: NormalizedName, version: Version) -> bool:
        return all(c.allows(version) for c in self.clauses.get(name, ()))

    def excluding(self, name: NormalizedName, version: Version) -> Clause | None:
        """The first clause that rules ``version`` of ``name`` out, if any."""
        return next((c for c in self.clauses.get(name, ()) if not c.allows(version)), None)

    def explain(self, clause: Clause) -> str:
        """``clause`` in words: whose requirement it is and why that project is needed."""
        return (
            f"every usable {clause.parent} requires {clause} "
            f"({clause.parent} is needed by {self.why.get(clause.parent, 'the user')})"
        )

    def derive(
        self,
        versions: HoldableVersions,
        deps: VersionDeps,
    ) -> bool:
        """Add what the known metadata implies; True when a clause was added.

        ``versions`` gives the versions of a project under a specifier that could be held
        (usable, none known dead, kept by the predicate), at most :data:`DEPENDENCY_LIMIT`
        and one more, or None when the project is unknown.
        """
        for name, text in self.root_text.items():
            self.why.setdefault(name, f"the user's {text}")
        pending = list(self.roots)
        added = False
        for _ in range(_PASSES):
            if not pending:
                break
            name = pending.pop(0)
            spec = self.roots.get(name, SpecifierSet())
            held = versions(name, spec, partial(self.allows, name))
            if held is None:
                continue
            if not held or len(held) > DEPENDENCY_LIMIT:
                continue
            shared = _shared(name, held, deps)
            if shared is None:
                continue
            for dep, specifiers in shared.items():
                if dep not in self.why:
                    self.why[dep] = f"{name}, needed by {self.why.get(name, 'the user')}"[:200]
                    pending.append(dep)
                if self._add(Clause(dep, specifiers, name)):
                    added = True
                    if dep not in pending:
                        pending.append(dep)
        return added

    def _add(self, clause: Clause) -> bool:
        if any(not s for s in clause.specifiers):
            return False  # any version will do: the project is needed, nothing is ruled out
        known = self.clauses.setdefault(clause.name, [])
        if any(str(c) == str(clause) for c in known):
            return False
        known.append(clause)
        return True


def _shared(
    name: NormalizedName, held: Iterable[Version], deps: VersionDeps
) -> dict[NormalizedName, tuple[SpecifierSet, ...]] | None:
    """The projects every one of ``held`` requires, with each version's specifier on it
    (distinct ones, in order), or None when some version's requirements are unknown."""
    shared: dict[NormalizedName, list[SpecifierSet]] | None = None
    for version in held:
        requires = deps(name, version)
        if requires is None:
            return None
        if shared is None:
            shared = {dep: [spec] for dep, spec in requires.items() if dep != name}
            continue
        for dep in list(shared):
            if dep not in requires:
                del shared[dep]
            elif all(str(s) != str(requires[dep]) for s in shared[dep]):
                shared[dep].append(requires[dep])
    if shared is None:
        return None
    return {dep: tuple(specs) for dep, specs in shared.items()}
