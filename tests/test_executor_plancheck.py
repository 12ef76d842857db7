"""Plan checks beyond the schema: hostile names, hashes, plain http; all problems at once."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fetchplan.errors import FileFormatError
from fetchplan.executor import plancheck
from fetchplan.executor.plancheck import check_destination_name, check_plan, read_plan
from tests.support.faults import PlanFile, write_plan

SHA = "a" * 64


def _document(tmp_path: Path, count: int = 2) -> dict[str, Any]:
    files = [
        PlanFile(f"http://127.0.0.1:9/files/f{i}.whl", b"x" * (i + 1), f"f{i}.whl")
        for i in range(count)
    ]
    path = write_plan(tmp_path / "plan.json", files)
    document: dict[str, Any] = json.loads(path.read_text())
    return document


@pytest.mark.parametrize(
    "name",
    [
        "../evil.whl",
        "..",
        ".",
        "sub/dir.whl",
        "sub\\dir.whl",
        "C:evil.whl",
        "nul",
        "NUL.txt",
        "com1.whl",
        "LPT9",
        "a\0b.whl",
        "tab\there.whl",
        "gpj.\u202eevil.whl",
        "trailing.",
        " lead.whl",
        "manifest.json",
        "Plan.JSON",
        ".fetchplan",
        "",
    ],
)
def test_hostile_destination_names_are_refused(name: str) -> None:
    assert check_destination_name(name) is not None


@pytest.mark.parametrize(
    "name", ["demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz", ".hidden.whl", "con-1.0.whl", "é.whl"]
)
def test_ordinary_names_pass(name: str) -> None:
    assert check_destination_name(name) is None


def test_every_problem_reported_with_its_path(tmp_path: Path) -> None:
    document = _document(tmp_path, 5)
    arts = document["artifacts"]
    arts[0]["destination"] = "../../etc/evil.whl"
    arts[1]["hashes"] = {"md5": "0" * 32}
    arts[2]["destination"] = arts[2]["filename"] = "F0.WHL"  # artifacts[0] no longer has it
    arts[3]["destination"] = arts[3]["filename"] = "f0.whl"
    arts[4]["url"] = "http://mirror.invalid/files/f4.whl"
    problems = {p.path: p.message for p in check_plan(document)}
    assert set(problems) == {
        "artifacts[0].destination",
        "artifacts[1].hashes.sha256",
        "artifacts[3].destination",
        "artifacts[4].url",
    }
    assert "md5 never count" in problems["artifacts[1].hashes.sha256"]
    assert "duplicates artifacts[2].destination" in problems["artifacts[3].destination"]
    assert "--trusted-host mirror.invalid" in problems["artifacts[4].url"]


def test_allowances_lift_exactly_their_checks(tmp_path: Path) -> None:
    document = _document(tmp_path)
    document["artifacts"][0]["hashes"] = {"sha1": "0" * 40}
    document["artifacts"][1]["url"] = "http://mirror.invalid:8080/f1.whl"
    assert len(check_plan(document)) == 2
    assert check_plan(document, allow_unhashed=True, trusted_hosts=["mirror.invalid"]) == []
    assert check_plan(document, allow_unhashed=True, trusted_hosts=["mirror.invalid:8080"]) == []
    assert len(check_plan(document, allow_unhashed=True, trusted_hosts=["other.invalid"])) == 1


def test_https_loopback_and_file_urls_pass(tmp_path: Path) -> None:
    document = _document(tmp_path)
    document["artifacts"][0]["url"] = "https://mirror.invalid/f0.whl"
    document["artifacts"][1]["url"] = "http://localhost:8000/f1.whl"
    assert check_plan(document) == []
    document["artifacts"][1]["url"] = "file:///srv/wheels/f1.whl"
    assert check_plan(document) == []
    document["artifacts"][1]["url"] = "file://otherhost/srv/f1.whl"
    assert [p.path for p in check_plan(document)] == ["artifacts[1].url"]


def test_sha256_shape_and_satisfied_by_hint(tmp_path: Path) -> None:
    document = _document(tmp_path)
    document["artifacts"][0]["hashes"]["sha256"] = "ab" * 16
    document["artifacts"][1]["satisfied_by"] = {"source": "cache", "sha256": SHA}
    paths = [p.path for p in check_plan(document)]
    assert paths == ["artifacts[0].hashes.sha256", "artifacts[1].satisfied_by.sha256"]


def test_read_plan_joins_schema_and_meaning(tmp_path: Path) -> None:
    document = _document(tmp_path)
    document["artifacts"][0]["size"] = "big"
    document["artifacts"][1]["destination"] = "a/b.whl"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    with pytest.raises(FileFormatError) as info:
        read_plan(bad)
    message = str(info.value)
    assert message.startswith(f"{bad}: 2 problems")
    assert f"{bad}: artifacts[0].size:" in message
    assert f"{bad}: artifacts[1].destination:" in message


def test_read_plan_accepts_a_good_plan(tmp_path: Path) -> None:
    document = _document(tmp_path)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(copy.deepcopy(document)))
    loaded = read_plan(good)
    assert [a.destination for a in loaded.plan.artifacts] == ["f0.whl", "f1.whl"]
    assert loaded.document == document


def test_destination_is_the_filename_and_not_absolute(tmp_path: Path) -> None:
    document = _document(tmp_path, 2)
    arts = document["artifacts"]
    arts[0]["destination"], arts[1]["destination"] = arts[1]["destination"], arts[0]["destination"]
    document["destination"] = str(tmp_path / "elsewhere")
    problems = {p.path: p.message for p in check_plan(document)}
    assert set(problems) == {"destination", "artifacts[0].destination", "artifacts[1].destination"}
    assert "give --dest" in problems["destination"]
    assert "is not the filename" in problems["artifacts[0].destination"]
    chosen = {p.path for p in check_plan(document, destination_given=True)}
    assert "destination" not in chosen


_GOOD_ARTIFACT: dict[str, Any] = {
    "destination": "a-1.0-py3-none-any.whl",
    "filename": "a-1.0-py3-none-any.whl",
    "hashes": {"sha256": SHA},
    "url": "https://files.example.test/a-1.0-py3-none-any.whl",
    "satisfied_by": None,
}


def _bad(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(_GOOD_ARTIFACT), **changes}


# Each rule of the table, fed artifacts whose last breaks it: the field it must name.
_RULE_CASES: dict[str, tuple[list[dict[str, Any]], str]] = {
    "_destination_is_safe": ([_bad(destination="../evil.whl")], "artifacts[0].destination"),
    "_destination_is_unique": (
        [_bad(), _bad(destination="A-1.0-PY3-none-any.whl", filename="A-1.0-PY3-none-any.whl")],
        "artifacts[1].destination",
    ),
    "_filename_is_the_destination": ([_bad(filename="b-1.0.tar.gz")], "artifacts[0].destination"),
    "_has_a_sha256": ([_bad(hashes={"md5": "ab"})], "artifacts[0].hashes.sha256"),
    "_satisfied_by_agrees": (
        [_bad(satisfied_by={"source": "cache", "sha256": "b" * 64})],
        "artifacts[0].satisfied_by.sha256",
    ),
    "_url_is_allowed": ([_bad(url="http://files.example.test/a.whl")], "artifacts[0].url"),
}


def _run_rule(rule: Any, artifacts: list[dict[str, Any]]) -> list[str]:
    checking = plancheck._Checking(allow_unhashed=False, trusted_hosts=frozenset())
    return [
        problem.path
        for i, artifact in enumerate(artifacts)
        for problem in rule(artifact, f"artifacts[{i}]", i, checking)
    ]


def test_every_artifact_rule_has_a_case() -> None:
    assert [rule.__name__ for rule in plancheck._ARTIFACT_RULES] == list(_RULE_CASES)


@pytest.mark.parametrize("rule", plancheck._ARTIFACT_RULES, ids=lambda rule: rule.__name__)
def test_each_artifact_rule_fails_its_bad_artifact_alone(rule: Any) -> None:
    """The rule names the field its case breaks, passes good artifacts, and no other rule of
    the table objects to the case (each rule owns one check)."""
    artifacts, field_path = _RULE_CASES[rule.__name__]
    assert _run_rule(rule, artifacts) == [field_path]
    assert _run_rule(rule, [_bad(), _bad(destination="b.whl", filename="b.whl")]) == []
    others = [r for r in plancheck._ARTIFACT_RULES if r is not rule]
    assert [p for other in others for p in _run_rule(other, artifacts)] == []
