"""The example plans in ``plans/`` validate, name no machine, and match a fresh regeneration."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from fetchplan.schemas.plan import load_plan

PLANS = Path(__file__).resolve().parent.parent / "plans"
FILES = sorted([*PLANS.glob("*/plan.json"), *PLANS.glob("*/plan.yaml")])


def _regenerate_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("plans_regenerate", PLANS / "regenerate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_there_are_examples() -> None:
    assert len(FILES) >= 3
    assert any(path.suffix == ".yaml" for path in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_plan_validates_and_names_no_machine(path: Path) -> None:
    plan, _document = load_plan(path)
    assert plan.artifacts
    assert plan.destination == "wheels"
    text = path.read_text()
    assert not re.search(r"/(root|home|tmp|work|opt|Users)/", text)
    assert "file:" not in text
    hosts = set(re.findall(r"https?://([^/\s\"']+)", text))
    assert hosts == {"127.0.0.1:8000"}
    for artifact in plan.artifacts:
        assert artifact.sha256 is not None and artifact.size is not None
    requirements = (path.parent / "requirements.txt").read_text()
    for requirement in plan.inputs.requirements:
        assert requirement in requirements


def test_examples_match_a_fresh_regeneration(tmp_path: Path) -> None:
    module = _regenerate_module()
    fresh = module.generate(tmp_path / "plans", tmp_path / "work")
    assert {p.relative_to(tmp_path / "plans") for p in fresh} == {
        p.relative_to(PLANS) for p in FILES
    }
    for path, data in fresh.items():
        committed = PLANS / path.relative_to(tmp_path / "plans")
        assert committed.read_bytes() == data, f"{committed} is stale: run plans/regenerate.py"
