"""Policies as data files (tests/data/policy/): each case's violations against one plan, bad
policy files named with their field, and the pure API the executor reuses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from fetchplan.errors import FileFormatError
from fetchplan.review.policy import (
    PolicyViolationError,
    check_policy,
    enforce_policy,
    load_policy,
    parse_size,
    policy_from_dict,
)
from fetchplan.schemas.plan import Plan, load_plan

DATA = Path(__file__).parent / "data" / "policy"
CASES = sorted(p for p in DATA.glob("*.yaml") if p.name != "bad.yaml")
BAD: list[dict[str, Any]] = yaml.safe_load((DATA / "bad.yaml").read_text())


@pytest.fixture(scope="module")
def plan() -> Plan:
    return load_plan(DATA / "plan.json")[0]


@pytest.mark.parametrize("case", CASES, ids=[p.stem for p in CASES])
def test_policy_case(case: Path, plan: Plan) -> None:
    data = yaml.safe_load(case.read_text())
    policy = policy_from_dict(data["policy"], case.name)
    got = [[v.rule, v.filename] for v in check_policy(plan, policy)]
    assert got == data["expect"], data["description"]


@pytest.mark.parametrize("case", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_policy_file_named_with_field(case: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(case["policy"]))
    with pytest.raises(FileFormatError) as info:
        load_policy(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {case['error']}")


def test_json_policy_and_violation_details(plan: Plan, tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text('{"max_file_size": 1000000, "yanked": "forbid"}')
    violations = check_policy(plan, load_policy(path))
    big = violations[0]
    assert (big.rule, big.project, big.version) == ("yanked", "big", "3.0")
    assert str(big) == (
        "big-3.0-cp312-cp312-manylinux_2_17_x86_64.whl: yanked: is yanked (broken build)"
    )
    assert str(violations[1]).endswith("max_file_size: 300000000 bytes > 1000000")
    assert big.to_dict()["filename"] == big.filename


def test_total_size_over_limit(plan: Plan) -> None:
    known = replace(plan, artifacts=tuple(a for a in plan.artifacts if a.size is not None))
    total = sum(a.size or 0 for a in known.artifacts)
    assert check_policy(known, policy_from_dict({"max_total_size": total}, "p")) == []
    over = check_policy(known, policy_from_dict({"max_total_size": total - 1}, "p"))
    assert [(v.rule, v.filename, v.message) for v in over] == [
        ("max_total_size", None, f"{total} bytes in all > {total - 1}")
    ]


def test_enforce_raises_one_line_error_naming_the_first_violation(plan: Plan) -> None:
    policy = policy_from_dict({"deny": ["big"]}, "p")
    with pytest.raises(PolicyViolationError) as info:
        enforce_policy(plan, policy, "policy.yaml")
    assert str(info.value) == (
        "policy.yaml: policy violated: big-3.0-cp312-cp312-manylinux_2_17_x86_64.whl: deny: "
        "denied by big (and 1 more)"
    )
    assert len(info.value.violations) == 2
    enforce_policy(plan, policy_from_dict({}, "p"), "policy.yaml")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (0, 0),
        ("512", 512),
        ("1.5kB", 1500),
        ("2 MiB", 2 * 2**20),
        ("1GB", 10**9),
        ("3 TiB", 3 * 2**40),
    ],
)
def test_parse_size(text: int | str, size: int) -> None:
    assert parse_size(text) == size


def test_policy_module_does_not_import_the_planner() -> None:
    import subprocess
    import sys

    code = (
        "import sys, fetchplan.review.policy;"
        "bad = [m for m in sys.modules if m.startswith(('fetchplan.planner', 'fetchplan.formats',"
        " 'requests', 'resolvelib'))];"
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
