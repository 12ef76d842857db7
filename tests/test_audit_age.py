"""Release age: durations and cut-off times as tables, policy ``min_age`` on a plan's upload
times (per project, with exemptions, unknown times reported), and audit's exit code."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import replace
from pathlib import Path

import pytest

from fetchplan._age import format_duration, parse_cutoff, parse_duration
from fetchplan.errors import FileFormatError
from fetchplan.review.policy import (
    PolicyViolationError,
    check_policy,
    enforce_policy,
    policy_from_dict,
)
from fetchplan.schemas.plan import Plan, load_plan, write_plan
from tests.conftest import RunCli

PLAN = Path(__file__).parent / "data" / "policy" / "plan.json"
NOW = _dt.datetime(2026, 6, 10, 12, 0, 0, tzinfo=_dt.UTC)
DAY = _dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7 days", 7 * DAY),
        ("1 day", DAY),
        ("7d", 7 * DAY),
        ("36h", _dt.timedelta(hours=36)),
        ("36 hours", _dt.timedelta(hours=36)),
        ("2 weeks", 14 * DAY),
        ("90min", _dt.timedelta(minutes=90)),
        ("1.5 days", _dt.timedelta(hours=36)),
        ("0 days", _dt.timedelta(0)),
        ("P7D", 7 * DAY),
        ("p1w", 7 * DAY),
        ("PT36H", _dt.timedelta(hours=36)),
        ("P1DT12H30M", _dt.timedelta(days=1, hours=12, minutes=30)),
    ],
)
def test_parse_duration(text: str, expected: _dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "days", "7 fortnights", "-1 day", "P", "PT", "7", "P1Y"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31", _dt.datetime(2026, 1, 31, tzinfo=_dt.UTC)),
        ("2026-01-31T12:00:00Z", _dt.datetime(2026, 1, 31, 12, tzinfo=_dt.UTC)),
        ("2026-01-31T12:00:00+02:00", _dt.datetime(2026, 1, 31, 10, tzinfo=_dt.UTC)),
        ("2026-01-31T12:00:00", _dt.datetime(2026, 1, 31, 12, tzinfo=_dt.UTC)),
        ("7 days", NOW - 7 * DAY),
        ("P1D", NOW - DAY),
    ],
)
def test_parse_cutoff(text: str, expected: _dt.datetime) -> None:
    assert parse_cutoff(text, NOW) == expected


def test_parse_cutoff_refuses() -> None:
    with pytest.raises(ValueError, match="neither a time nor a duration: 'yesterday'"):
        parse_cutoff("yesterday", NOW)


def test_format_duration() -> None:
    assert format_duration(_dt.timedelta(days=3, hours=4, minutes=5)) == "3 days 4 hours"
    assert format_duration(_dt.timedelta(minutes=25)) == "25 minutes"
    assert format_duration(_dt.timedelta(0)) == "0 seconds"


def _plan(uploads: dict[str, str | None]) -> Plan:
    plan = load_plan(PLAN)[0]
    return replace(
        plan,
        artifacts=tuple(
            replace(a, upload_time=uploads[a.name]) if a.name in uploads else a
            for a in plan.artifacts
        ),
    )


def _ages(plan: Plan, document: dict[str, object]) -> list[tuple[str, str]]:
    policy = policy_from_dict(document, "policy.yaml")
    return [
        (v.filename or "", v.message)
        for v in check_policy(plan, policy, now=NOW)
        if v.rule == "min_age"
    ]


def test_min_age_on_upload_times() -> None:
    plan = _plan(
        {
            "app": "2026-06-09T12:00:00Z",  # one day old
            "lib": "2026-05-01T00:00:00Z",  # old enough
            "big": "2026-06-10T11:30:00Z",  # half an hour
            "nohash": None,
            "setuptools": "2026-06-11T00:00:00Z",  # in the future: a lying index
        }
    )
    assert _ages(plan, {"min_age": "7 days"}) == [
        (
            "app-1.0-py3-none-any.whl",
            "uploaded 2026-06-09T12:00:00Z (1 day ago), younger than 7 days",
        ),
        (
            "big-3.0-cp312-cp312-manylinux_2_17_x86_64.whl",
            "uploaded 2026-06-10T11:30:00Z (30 minutes ago), younger than 7 days",
        ),
        (
            "big-3.0.tar.gz",
            "uploaded 2026-06-10T11:30:00Z (30 minutes ago), younger than 7 days",
        ),
        (
            "nohash-0.1-py3-none-any.whl",
            "the index gave no upload time: its age cannot be checked",
        ),
        (
            "setuptools-80.0-py3-none-any.whl",
            "uploaded 2026-06-11T00:00:00Z (in the future), younger than 7 days",
        ),
    ]
    per_project: dict[str, object] = {
        "min_age": {
            "default": "12 hours",
            "projects": {"B*": "1 hour", "big": "1 minute", "App": "2 days"},
            "exempt": ["NoHash", "setup*"],
        }
    }
    assert [f for f, _ in _ages(plan, per_project)] == ["app-1.0-py3-none-any.whl"]
    # Without a default, projects no pattern names are not checked.
    assert _ages(plan, {"min_age": {"projects": {"lib": "1 hour"}}}) == []
    assert [f for f, _ in _ages(plan, {"min_age": {"projects": {"b*": "1 hour"}}})] == [
        "big-3.0-cp312-cp312-manylinux_2_17_x86_64.whl",
        "big-3.0.tar.gz",
    ]
    assert _ages(plan, {}) == []


def test_min_age_enforced_like_every_rule() -> None:
    old = "2026-01-01T00:00:00Z"
    plan = _plan(
        {"app": "2026-06-09T12:00:00Z", "lib": old, "big": old, "nohash": old, "setuptools": old}
    )
    policy = policy_from_dict({"min_age": {"default": "2 days", "exempt": ["app"]}}, "p.yaml")
    enforce_policy(plan, policy, "p.yaml", now=NOW)
    strict = policy_from_dict({"min_age": "2 days"}, "p.yaml")
    with pytest.raises(PolicyViolationError) as caught:
        enforce_policy(plan, strict, "p.yaml", now=NOW)
    assert str(caught.value) == (
        "p.yaml: policy violated: app-1.0-py3-none-any.whl: min_age: uploaded "
        "2026-06-09T12:00:00Z (1 day ago), younger than 2 days"
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"min_age": "soon"}, "min_age: not a duration: 'soon'"),
        ({"min_age": {"default": "1 eon"}}, "min_age.default: not a duration: '1 eon'"),
        ({"min_age": {"projects": {"numpy": "x"}}}, "min_age.projects.numpy: not a duration"),
        ({"min_age": {"later": "1 day"}}, "min_age"),
        ({"min_age": 7}, "min_age"),
    ],
)
def test_bad_min_age_named(document: dict[str, object], message: str) -> None:
    with pytest.raises(FileFormatError) as caught:
        policy_from_dict(document, "policy.yaml")
    assert str(caught.value).startswith(f"policy.yaml: {message}")


def test_cli_refuses_a_fresh_file(tmp_path: Path, run_cli: RunCli) -> None:
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    fresh = (now - _dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    old = (now - 30 * DAY).isoformat().replace("+00:00", "Z")
    plan = tmp_path / "plan.json"
    write_plan(
        plan,
        _plan({"app": fresh, "lib": old, "big": old, "nohash": old, "setuptools": old}),
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text("min_age: 7 days\n")
    done = run_cli("audit", plan, "--policy", policy, "--format", "json")
    assert done.returncode == 1, done.stderr
    violations = json.loads(done.stdout)["violations"]
    assert [(v["rule"], v["project"]) for v in violations] == [("min_age", "app")]
    policy.write_text("min_age: {default: 7 days, exempt: [app]}\n")
    assert run_cli("audit", plan, "--policy", policy).returncode == 0
