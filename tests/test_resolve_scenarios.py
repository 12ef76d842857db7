"""Resolution scenarios as data: ``tests/data/scenarios/*.yaml``, each requested -> expected.

Each scenario describes one or more indexes (lists of distributions), optional find-links
files, requirements, constraints and options, and either the expected resolved set (with
optional extras, kinds, chosen files, index of origin, edges...) or the expected error (its
type and substrings of its one-line message). The distributions are built as real wheels and
sdists, written as static indexes and planned against through ``file://`` URLs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from fetchplan.errors import FetchplanError
from fetchplan.planner.api import FormatOp, PlanOptions, make_plan
from fetchplan.planner.sources import IndexStrategy
from fetchplan.schemas import dumps_document
from fetchplan.schemas.plan import Plan
from tests.support.index import IndexOptions, write_index
from tests.support.wheels import Dist, build_sdist, build_wheel

SCENARIOS = Path(__file__).parent / "data" / "scenarios"
DEFAULT_TARGET = {"python_version": "3.11", "platforms": ["manylinux_2_17_x86_64"]}


def _build(entries: list[Mapping[str, Any]], directory: Path) -> tuple[list[Path], dict[str, Any]]:
    files: list[Path] = []
    yanked: dict[str, Any] = {}
    for entry in entries:
        dist = Dist(
            name=entry["name"],
            version=entry["version"],
            requires=entry.get("requires", ()),
            extras=entry.get("extras", {}),
            requires_python=entry.get("requires_python"),
            tag=entry.get("tag", "py3-none-any"),
            metadata_version=entry.get("metadata_version", "2.1"),
        )
        built: list[Path] = []
        if entry.get("wheel", True):
            built.append(build_wheel(directory, dist))
        if entry.get("sdist", False):
            built.append(build_sdist(directory, dist, dynamic=entry.get("dynamic", ())))
        if "yanked" in entry:
            yanked.update({path.name: entry["yanked"] for path in built})
        files.extend(built)
    return files, yanked


def _plan(scenario: Mapping[str, Any], tmp_path: Path) -> tuple[Plan, list[str], int]:
    index_urls = []
    for number, entries in enumerate(scenario["indexes"]):
        files, yanked = _build(entries, tmp_path / f"dists{number}")
        overrides = {}
        if scenario.get("index_requires_python", True) is False:
            overrides = {path.name: "" for path in files}
        simple = write_index(
            tmp_path / f"index{number}",
            files,
            IndexOptions(yanked=yanked, requires_python=overrides),
        )
        index_urls.append(simple.as_uri())
    find_links: list[str] = []
    if "find_links" in scenario:
        flat = tmp_path / "flat"
        _build(scenario["find_links"], flat)
        find_links.append(str(flat))
    constraint_files = []
    if scenario.get("constraints"):
        constraints = tmp_path / "constraints.txt"
        constraints.write_text("\n".join(scenario["constraints"]) + "\n")
        constraint_files.append(constraints)
    opts = {**DEFAULT_TARGET, **scenario.get("options", {})}
    format_ops: list[FormatOp] = [("only_binary", v) for v in opts.get("only_binary", ())]
    format_ops += [("no_binary", v) for v in opts.get("no_binary", ())]
    options = PlanOptions(
        requirements=scenario["requirements"],
        constraint_files=constraint_files,
        index_url=index_urls[0],
        extra_index_urls=index_urls[1:],
        find_links=find_links,
        index_strategy=IndexStrategy(opts.get("index_strategy", "first-index")),
        pre=opts.get("pre", False),
        prefer_binary=opts.get("prefer_binary", False),
        format_ops=format_ops,
        python_version=opts.get("python_version"),
        platforms=opts.get("platforms", ()),
        build_deps=opts.get("build_deps", True),
        output=tmp_path / "plan.json",
        isolated=True,
        no_cache=True,
        jobs=4,
    )
    result = make_plan(options)
    rounds = result.timings.to_dict()["resolver"]["rounds"]
    return result.plan, index_urls, rounds


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_scenario(path: Path, tmp_path: Path) -> None:
    scenario = yaml.safe_load(path.read_text())
    expected = scenario["expected"]
    if "error" in expected:
        with pytest.raises(FetchplanError) as caught:
            _plan(scenario, tmp_path)
        message = str(caught.value)
        assert type(caught.value).__name__ == expected["error_type"], message
        assert "\n" not in message
        for fragment in expected["error"]:
            assert fragment in message, f"{fragment!r} not in {message!r}"
        return
    plan, index_urls, rounds = _plan(scenario, tmp_path)
    dumps_document(plan.to_dict(), "plan", "plan.json")  # every plan validates
    by_name = {a.name: a for a in plan.artifacts}
    versions = {n: a.version for n, a in by_name.items()}
    if "resolved" in expected:
        assert versions == expected["resolved"]
    for name, version in expected.get("resolved_subset", {}).items():
        assert versions.get(name) == version, (name, versions)
    for name in expected.get("absent", []):
        assert name not in versions, (name, versions)
    if "rounds_at_most" in expected:
        assert rounds <= expected["rounds_at_most"], rounds
    if "requested" in expected:
        assert sorted(n for n, a in by_name.items() if a.requested) == expected["requested"]
    for name, extras in expected.get("extras", {}).items():
        assert list(by_name[name].extras) == extras
    for name, kind in expected.get("kinds", {}).items():
        assert by_name[name].kind == kind
    for name, filename in expected.get("filenames", {}).items():
        assert by_name[name].filename == filename
    for name in expected.get("yanked", []):
        assert by_name[name].yanked
    for name, source in expected.get("hash_source", {}).items():
        assert by_name[name].hash_source == source
        assert by_name[name].sha256 is not None
    for name, where in expected.get("index", {}).items():
        index = by_name[name].index
        if where == "find-links":
            assert index.startswith("file:") and index.rstrip("/").endswith("/flat"), index
        else:
            assert index == index_urls[where].rstrip("/") + "/"
    for name, edges in expected.get("edges", {}).items():
        assert sorted(d.requirement for d in by_name[name].dependencies) == sorted(edges)
    for artifact in plan.artifacts:
        assert artifact.size is not None and artifact.size > 0
        assert artifact.destination == artifact.filename
