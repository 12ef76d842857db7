"""The rule table of ``merge_manifests``: each rule, fed manifests that break it, names its
field and the file it is about; good manifests pass every rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fetchplan.executor import manifests
from fetchplan.schemas.manifest import Manifest, PlanRef, Shard

PLAN_A = "a" * 64
PLAN_B = "b" * 64


def _manifest(plan: str = PLAN_A, shard: tuple[int, int] | None = None) -> Manifest:
    return Manifest(
        created="2026-01-01T00:00:00Z",
        plan=PlanRef(sha256=plan, path="plan.json"),
        shard=None if shard is None else Shard(index=shard[0], count=shard[1]),
        artifacts=(),
    )


# Each rule of the table, fed manifests whose last breaks it: the field and file it must name.
_RULE_CASES: dict[str, tuple[list[Manifest], str]] = {
    "_same_plan": ([_manifest(), _manifest(PLAN_B)], "plan.sha256"),
    "_shards_agree_on_count": ([_manifest(shard=(1, 2)), _manifest(shard=(2, 3))], "shard.count"),
    "_shard_not_repeated": ([_manifest(shard=(1, 2)), _manifest(shard=(1, 2))], "shard.index"),
}
_GOOD = [_manifest(shard=(1, 2)), _manifest(shard=(2, 2))]


def _run_rule(rule: Any, documents: list[Manifest]) -> list[tuple[str, str | None]]:
    merge = manifests._Merge(
        [(Path(f"d{i}") / "manifest.json", m) for i, m in enumerate(documents)], Path("out")
    )
    return [
        (problem.path, problem.file)
        for path, manifest in merge.manifests
        for problem in rule(merge, path, manifest)
    ]


def test_every_manifest_rule_has_a_case() -> None:
    assert [rule.__name__ for rule in manifests._MANIFEST_RULES] == list(_RULE_CASES)


@pytest.mark.parametrize("rule", manifests._MANIFEST_RULES, ids=lambda rule: rule.__name__)
def test_each_manifest_rule_fails_its_bad_manifests_alone(rule: Any) -> None:
    documents, field_path = _RULE_CASES[rule.__name__]
    found = _run_rule(rule, documents)
    assert found[-1] == (field_path, str(Path(f"d{len(documents) - 1}") / "manifest.json"))
    assert {path for path, _ in found} == {field_path}
    assert _run_rule(rule, _GOOD) == []
    others = [r for r in manifests._MANIFEST_RULES if r is not rule]
    assert [p for other in others for p in _run_rule(other, documents)] == []


def test_the_plan_rule_names_the_output_for_what_no_manifest_lists() -> None:
    merge = manifests._Merge([(Path("d0/manifest.json"), _manifest())], Path("out"))
    order = [f"f{i}.whl" for i in range(12)]
    [problem] = manifests._all_listed(merge, order, "out/manifest.json")
    assert (problem.path, problem.file) == ("artifacts", "out/manifest.json")
    assert problem.message.startswith("12 of the plan's artifacts are not in any manifest: f0.whl")
    assert problem.message.endswith("f9.whl ...")
    assert list(manifests._all_listed(merge, [], "out/manifest.json")) == []
