"""What every solution holds (fetchplan.planner.necessary), on a table of versions."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from fetchplan.planner.necessary import DEPENDENCY_LIMIT, Necessary

Table = Mapping[str, Mapping[str, Mapping[str, str] | None]]


def _derive(table: Table, roots: Mapping[str, str]) -> Necessary:
    def versions(
        name: NormalizedName, spec: SpecifierSet, keep: Callable[[Version], bool]
    ) -> list[Version] | None:
        if name not in table:
            return None
        found = [Version(v) for v in table[name]]
        return [v for v in spec.filter(found, prereleases=True) if keep(v)][: DEPENDENCY_LIMIT + 1]

    def deps(name: NormalizedName, version: Version) -> dict[NormalizedName, SpecifierSet] | None:
        known = table[name][str(version)]
        if known is None:
            return None
        return {canonicalize_name(k): SpecifierSet(v) for k, v in known.items()}

    necessary = Necessary(
        roots={canonicalize_name(k): SpecifierSet(v) for k, v in roots.items()},
        root_text={canonicalize_name(k): f"{k}{v}" for k, v in roots.items()},
    )
    necessary.derive(versions, deps)
    return necessary


def test_a_requirement_of_every_version_is_learned_through_a_chain() -> None:
    table: Table = {
        "a": {"1.0": {"b": ""}, "2.0": {"b": ">=1"}},
        "b": {"1.0": {"c": "<5"}, "2.0": {"c": "<4"}},
        "c": {"3.0": {}, "4.0": {}, "5.0": {}},
    }
    necessary = _derive(table, {"a": ""})
    c = canonicalize_name("c")
    assert [necessary.allows(c, Version(v)) for v in ("3.0", "4.0", "5.0")] == [True, True, False]
    clause = necessary.excluding(c, Version("5.0"))
    assert clause is not None
    assert "every usable b requires c<5 or c<4" in necessary.explain(clause)
    assert "(b is needed by a, needed by the user's a)" in necessary.explain(clause)


def test_nothing_is_learned_when_one_version_does_without_or_is_unknown() -> None:
    table: Table = {
        "a": {"1.0": {"c": "<5"}, "2.0": {}},
        "c": {"5.0": {}},
    }
    assert not _derive(table, {"a": ""}).clauses
    assert not _derive({**table, "a": {"1.0": {"c": "<5"}, "2.0": None}}, {"a": ""}).clauses
    # The user's own bound narrows what is looked at: only a 1.0 is allowed.
    assert _derive(table, {"a": "<2"}).clauses


def test_a_project_with_many_versions_is_not_looked_into() -> None:
    many = {f"{n}.0": {"c": "<5"} for n in range(1, DEPENDENCY_LIMIT + 2)}
    assert not _derive({"a": many, "c": {"5.0": {}}}, {"a": ""}).clauses
    few = dict(list(many.items())[:DEPENDENCY_LIMIT])
    assert _derive({"a": few, "c": {"5.0": {}}}, {"a": ""}).clauses
