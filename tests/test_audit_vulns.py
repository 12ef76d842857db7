"""Known vulnerabilities from an OSV database: range matching as a table, the records read
from a zip or a directory, their errors, the audit's report and the policy rules.

The database is written here by hand, record by record, as the OSV schema specifies them
(``id`` and ``modified`` required, ``affected[].package`` with ``ecosystem`` and ``name``,
``ranges[]`` of ``type`` ECOSYSTEM, SEMVER or GIT whose ``events`` each hold exactly one of
``introduced``, ``fixed``, ``last_affected``, ``limit``, and at least one ``introduced``).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from fetchplan.errors import FileFormatError, InputError
from fetchplan.review import vulns
from fetchplan.review.audit import audit_plan, render_audit
from fetchplan.review.policy import check_vulns, policy_from_dict
from fetchplan.review.vulns import (
    Event,
    EventKind,
    RangeKind,
    VersionRange,
    advisory_from_dict,
    load_osv_database,
    range_affects,
    semver_key,
)
from fetchplan.schemas.plan import load_plan
from tests.conftest import RunCli
from tests.support.airgap import run_without_network

PLAN = Path(__file__).parent / "data" / "policy" / "plan.json"
CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # base score 9.8
CRITICAL_V4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"  # 9.3


def _range(kind: RangeKind, *events: tuple[EventKind, str]) -> VersionRange:
    return VersionRange(kind=kind, events=tuple(Event(kind=k, version=v) for k, v in events))


RANGES: list[tuple[VersionRange, str, bool]] = [
    # ECOSYSTEM: PEP 440 order.
    (_range("ECOSYSTEM", ("introduced", "0"), ("fixed", "1.0")), "0.9", True),
    (_range("ECOSYSTEM", ("introduced", "0"), ("fixed", "1.0")), "1.0", False),
    (_range("ECOSYSTEM", ("introduced", "0"), ("fixed", "1.0")), "1.0rc1", True),
    (_range("ECOSYSTEM", ("introduced", "0"), ("fixed", "1.0")), "0.0.dev1", True),
    (_range("ECOSYSTEM", ("introduced", "0"), ("fixed", "1.0")), "1.0.0", False),
    (_range("ECOSYSTEM", ("introduced", "0"), ("fixed", "1.0")), "1!0.5", False),
    (_range("ECOSYSTEM", ("introduced", "1.5")), "1.4", False),
    (_range("ECOSYSTEM", ("introduced", "1.5")), "1.5", True),
    (_range("ECOSYSTEM", ("introduced", "1.5")), "99", True),
    # last_affected is inclusive; a post release of it is after it.
    (_range("ECOSYSTEM", ("introduced", "1.0"), ("last_affected", "1.2")), "1.2", True),
    (_range("ECOSYSTEM", ("introduced", "1.0"), ("last_affected", "1.2")), "1.2.post1", False),
    (_range("ECOSYSTEM", ("introduced", "1.0"), ("last_affected", "1.2")), "0.9", False),
    # Two intervals, events listed out of order: they are sorted by version first.
    *[
        (
            _range(
                "ECOSYSTEM",
                ("fixed", "2.0"),
                ("introduced", "3.0"),
                ("introduced", "1.0"),
                ("fixed", "4.0"),
            ),
            version,
            expected,
        )
        for version, expected in [
            ("0.5", False),
            ("1.0", True),
            ("1.5", True),
            ("2.0", False),
            ("2.5", False),
            ("3.0", True),
            ("3.9", True),
            ("4.0", False),
            ("10", False),
        ]
    ],
    # limit bounds the whole range.
    (_range("ECOSYSTEM", ("introduced", "0"), ("limit", "2.0")), "1.9", True),
    (_range("ECOSYSTEM", ("introduced", "0"), ("limit", "2.0")), "2.0", False),
    (_range("ECOSYSTEM", ("introduced", "0"), ("limit", "*")), "2.0", True),
    # SEMVER: SemVer 2.0 precedence; PEP 440 versions are coerced (2.0 is 2.0.0).
    (_range("SEMVER", ("introduced", "2.0.0"), ("fixed", "2.3.1")), "2.0", True),
    (_range("SEMVER", ("introduced", "2.0.0"), ("fixed", "2.3.1")), "2.3.0", True),
    (_range("SEMVER", ("introduced", "2.0.0"), ("fixed", "2.3.1")), "2.3.1", False),
    (_range("SEMVER", ("introduced", "2.0.0"), ("fixed", "2.3.1")), "1.9.9", False),
    (_range("SEMVER", ("introduced", "2.0.0"), ("fixed", "2.3.1")), "2.3.1rc1", True),
    (_range("SEMVER", ("introduced", "2.0.0"), ("fixed", "2.3.1")), "2.0.0a1", False),
    (_range("SEMVER", ("introduced", "0"), ("last_affected", "3.0.0")), "3.0", True),
    (_range("SEMVER", ("introduced", "0"), ("last_affected", "3.0.0")), "3.0.1", False),
    (_range("SEMVER", ("introduced", "1.0.0-rc.1"), ("fixed", "1.0.0")), "1.0.0rc2", True),
    (_range("SEMVER", ("introduced", "1.0.0-rc.1"), ("fixed", "1.0.0")), "1.0.0b9", False),
]


@pytest.mark.parametrize(("rng", "version", "expected"), RANGES)
def test_range_affects(rng: VersionRange, version: str, expected: bool) -> None:
    assert range_affects(rng, Version(version)) is expected


def test_semver_precedence_is_the_specs() -> None:
    # The example chain of SemVer 2.0 section 11, and build metadata ignored.
    chain = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.10.0",
        "2.0.0",
    ]
    keys = [semver_key(v) for v in chain]
    assert all(k is not None for k in keys)
    assert keys == sorted(keys)  # type: ignore[type-var]
    assert len(set(keys)) == len(keys)
    assert semver_key("1.0.0+build.7") == semver_key("1.0.0")
    for bad in ("1.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0-01"):
        assert semver_key(bad) is None, bad


# A small OSV database of the PyPI ecosystem, as OSV exports it.


def _record(ident: str, affected: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "schema_version": "1.6.0",
        "id": ident,
        "modified": "2026-03-04T05:06:07Z",
        "published": "2026-03-01T00:00:00Z",
        "affected": affected,
        "references": [{"type": "ADVISORY", "url": f"https://advisories.example.org/{ident}"}],
        **extra,
    }


def _pypi(name: str, **fields: Any) -> dict[str, Any]:
    return {"package": {"ecosystem": "PyPI", "name": name, "purl": f"pkg:pypi/{name}"}, **fields}


RECORDS: list[dict[str, Any]] = [
    _record(
        "PYSEC-2026-1",
        [
            _pypi(
                "Lib",
                ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.1"}]}],
            )
        ],
        aliases=["CVE-2026-1001", "GHSA-aaaa-bbbb-cccc"],
        summary="lib runs code from its configuration",
        details="Longer text.",
        severity=[{"type": "CVSS_V3", "score": CRITICAL}],
    ),
    # The same vulnerability as GitHub publishes it: an alias, listed once.
    _record(
        "GHSA-aaaa-bbbb-cccc",
        [
            _pypi(
                "lib",
                ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "2.1"}]}],
            )
        ],
        aliases=["CVE-2026-1001", "PYSEC-2026-1"],
        summary="lib runs code from its configuration (GitHub)",
        database_specific={"severity": "CRITICAL"},
    ),
    # SEMVER range closed by last_affected: 3.0 is 3.0.0, still affected.
    _record(
        "GHSA-semv-er00-0001",
        [
            _pypi(
                "big",
                ranges=[
                    {
                        "type": "SEMVER",
                        "events": [{"introduced": "2.5.0"}, {"last_affected": "3.0.0"}],
                    }
                ],
            )
        ],
        summary="big leaks memory",
        database_specific={"severity": "MODERATE"},
    ),
    # Withdrawn: ignored even though it names app 1.0.
    _record(
        "PYSEC-2026-3",
        [_pypi("app", ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}])],
        withdrawn="2026-03-05T00:00:00Z",
        summary="not a vulnerability after all",
    ),
    # Only an explicit versions list, no severity at all.
    _record(
        "PYSEC-2026-4",
        [_pypi("app", versions=["0.9", "1.0"])],
        summary="app trusts any certificate",
    ),
    # Two intervals that miss setuptools 80.0, and a GIT range that is not used.
    _record(
        "PYSEC-2026-5",
        [
            _pypi(
                "setuptools",
                ranges=[
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "70.0"}]},
                    {"type": "ECOSYSTEM", "events": [{"introduced": "81.0"}, {"fixed": "82.0"}]},
                    {
                        "type": "GIT",
                        "repo": "https://git.example.org/setuptools",
                        "events": [{"introduced": "0"}, {"fixed": "a" * 40}],
                    },
                ],
            )
        ],
        severity=[{"type": "CVSS_V4", "score": CRITICAL_V4}],
    ),
    # last_affected in an ECOSYSTEM range, and a second range with a later fix.
    _record(
        "PYSEC-2026-6",
        [
            _pypi(
                "nohash",
                ranges=[
                    {
                        "type": "ECOSYSTEM",
                        "events": [{"introduced": "0"}, {"last_affected": "0.1"}],
                    },
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0.0.5"}, {"fixed": "0.3"}]},
                ],
            )
        ],
        summary="nohash is low risk",
        severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"}],
    ),
    # Another ecosystem's package of the same name: not a PyPI project.
    _record(
        "GHSA-npm0-0000-0001",
        [
            {
                "package": {"ecosystem": "npm", "name": "app"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}],
            }
        ],
    ),
    # A project the plan does not have, with a version PEP 440 cannot read: not looked at.
    _record(
        "PYSEC-2026-7",
        [
            _pypi(
                "elsewhere",
                ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0~b"}]}],
            )
        ],
    ),
]


def _write_zip(path: Path, records: list[dict[str, Any]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    return path


def _write_dir(path: Path, records: list[dict[str, Any]]) -> Path:
    path.mkdir(parents=True)
    for record in records:
        (path / f"{record['id']}.json").write_text(json.dumps(record))
    return path


EXPECTED = [
    ("lib", "2.0", "PYSEC-2026-1", "critical", ("2.1",)),
    ("big", "3.0", "GHSA-semv-er00-0001", "medium", ()),
    ("big", "3.0", "GHSA-semv-er00-0001", "medium", ()),
    ("nohash", "0.1", "PYSEC-2026-6", "low", ("0.3",)),
    ("app", "1.0", "PYSEC-2026-4", None, ()),
]


def _key(finding: vulns.VulnFinding) -> tuple[Any, ...]:
    return (finding.project, finding.version, finding.id, finding.level, finding.fixed)


@pytest.mark.parametrize("layout", ["zip", "dir"])
def test_database_matches_the_plan(tmp_path: Path, layout: str) -> None:
    write = _write_zip if layout == "zip" else _write_dir
    db = write(tmp_path / ("all.zip" if layout == "zip" else "osv"), RECORDS)
    plan = load_plan(PLAN)[0]
    advisories = load_osv_database(db, {a.name for a in plan.artifacts})
    # Records about no planned project (npm's app, elsewhere) are dropped.
    assert sorted(a.id for a in advisories) == sorted(
        r["id"] for r in RECORDS if r["id"] not in {"GHSA-npm0-0000-0001", "PYSEC-2026-7"}
    )
    audit = audit_plan(plan, advisories=advisories)
    assert audit.vulnerabilities is not None
    assert sorted(map(_key, audit.vulnerabilities)) == sorted(EXPECTED)
    lib = next(f for f in audit.vulnerabilities if f.project == "lib")
    assert lib.aliases == ("CVE-2026-1001", "GHSA-aaaa-bbbb-cccc")
    assert lib.score == 9.8
    assert lib.summary == "lib runs code from its configuration"
    assert lib.source.endswith("PYSEC-2026-1.json")
    document = json.loads(json.dumps(audit.to_dict()))
    assert {v["id"] for v in document["vulnerabilities"]} == {e[2] for e in EXPECTED}
    assert "Known vulnerabilities (5):" in render_audit(audit)
    assert audit_plan(plan).to_dict()["vulnerabilities"] is None


def _findings(tmp_path: Path, records: list[dict[str, Any]]) -> list[vulns.VulnFinding]:
    plan = load_plan(PLAN)[0]
    advisories = load_osv_database(_write_dir(tmp_path / "osv", records), {"app", "lib"})
    found = audit_plan(plan, advisories=advisories).vulnerabilities
    assert found is not None
    return list(found)


def test_withdrawn_and_aliases_only_matter_when_present(tmp_path: Path) -> None:
    revived = [dict(r) for r in RECORDS]
    for record in revived:
        if record["id"] == "PYSEC-2026-3":
            del record["withdrawn"]
        if record["id"] == "PYSEC-2026-1":
            del record["severity"]
    found = _findings(tmp_path / "one", revived)
    assert [(f.project, f.id) for f in found] == [
        ("app", "PYSEC-2026-3"),
        ("app", "PYSEC-2026-4"),
        ("lib", "PYSEC-2026-1"),
    ]
    # One finding for the aliases, rated by GitHub's record when PyPA's has no vector.
    lib = found[2]
    assert (lib.level, lib.score, lib.fixed) == ("critical", None, ("2.1",))

    for record in revived:
        record.pop("aliases", None)
    apart = _findings(tmp_path / "two", revived)
    assert [(f.id, f.level) for f in apart if f.project == "lib"] == [
        ("PYSEC-2026-1", None),
        ("GHSA-aaaa-bbbb-cccc", "critical"),
    ]


BAD: list[tuple[Any, str]] = [
    ({"modified": "2026-01-01T00:00:00Z", "affected": []}, "id: is required"),
    (
        _record("X-1", [_pypi("lib", ranges=[{"type": "ECOSYSTEM", "events": [{"fixed": "1"}]}])]),
        "affected[0].ranges[0].events: has no introduced event",
    ),
    (
        _record(
            "X-2",
            [
                _pypi(
                    "lib",
                    ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "2.0"}]}],
                )
            ],
        ),
        "affected[0].ranges[0].events[0]: must have exactly one of introduced, fixed, "
        "last_affected, limit",
    ),
    (
        _record(
            "X-3",
            [
                _pypi(
                    "lib",
                    ranges=[
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.x"}]}
                    ],
                )
            ],
        ),
        "affected[0].ranges[0].events[1].fixed: '2.x' is not a PEP 440 version",
    ),
    (
        _record(
            "X-4",
            [
                _pypi(
                    "lib",
                    ranges=[{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "2.1"}]}],
                )
            ],
        ),
        "affected[0].ranges[0].events[1].fixed: '2.1' is not a SemVer 2.0 version",
    ),
    (
        _record("X-5", [_pypi("lib", ranges=[{"type": "RANGE", "events": []}])]),
        "affected[0].ranges[0].type: must be ECOSYSTEM, SEMVER or GIT, not 'RANGE'",
    ),
    (
        _record(
            "X-6",
            [_pypi("lib", versions=["2.0"])],
            severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N"}],
        ),
        "severity[0].score: not a CVSS_V3 vector: 'CVSS:3.1/AV:N'",
    ),
    (
        _record("X-7", [_pypi("lib", versions="2.0")]),
        "affected[0].versions: must be a list of strings",
    ),
    (["not", "a", "record"], "(document): an OSV record must be a JSON object"),
]


@pytest.mark.parametrize(("document", "message"), BAD)
def test_bad_record_is_named_with_its_field(tmp_path: Path, document: Any, message: str) -> None:
    db = _write_zip(tmp_path / "all.zip", [RECORDS[0]])
    with zipfile.ZipFile(db, "a") as archive:
        archive.writestr("BAD-1.json", json.dumps(document))
    with pytest.raises(FileFormatError) as caught:
        load_osv_database(db, {"lib"})
    assert str(caught.value).startswith(f"{db}:BAD-1.json: {message}")
    assert "\n" not in str(caught.value)


def test_database_reading_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vulns, "MAX_RECORD_BYTES", 2000)
    huge = _record("HUGE-1", [_pypi("lib", versions=["2.0"])], details="x" * 5000)
    db = _write_zip(tmp_path / "all.zip", [RECORDS[0], huge])
    with pytest.raises(FileFormatError, match=r"all\.zip:HUGE-1\.json: .*more than an OSV record"):
        load_osv_database(db)
    folder = _write_dir(tmp_path / "osv", [huge])
    with pytest.raises(FileFormatError, match=r"HUGE-1\.json: .*more than an OSV record"):
        load_osv_database(folder)
    monkeypatch.setattr(vulns, "MAX_DATABASE_BYTES", 1000)
    with pytest.raises(InputError, match=r"all\.zip: more than 1000 bytes of OSV records"):
        load_osv_database(_write_zip(tmp_path / "all.zip", RECORDS[:4]))
    monkeypatch.setattr(vulns, "MAX_RECORDS", 1)
    with pytest.raises(InputError, match="2 records, more than 1"):
        load_osv_database(_write_zip(tmp_path / "two.zip", RECORDS[:2]))
    (tmp_path / "broken.zip").write_bytes(b"PK not really")
    with pytest.raises(InputError, match="not a readable zip of OSV records"):
        load_osv_database(tmp_path / "broken.zip")
    with pytest.raises(InputError, match="no such OSV database"):
        load_osv_database(tmp_path / "missing.zip")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "A.json").write_text("{not json")
    with pytest.raises(FileFormatError, match=r"A\.json: \(document\): not JSON"):
        load_osv_database(tmp_path / "text")


def test_policy_rules_on_findings() -> None:
    plan = load_plan(PLAN)[0]
    advisories = [
        a
        for r in RECORDS
        if (a := advisory_from_dict(r, f"{r['id']}.json", {x.name for x in plan.artifacts}))
    ]
    findings = audit_plan(plan, advisories=advisories).vulnerabilities
    deny = policy_from_dict({"deny_vulns": True, "ignore_vulns": ["CVE-2026-1001"]}, "p.yaml")
    assert [(v.rule, v.project) for v in check_vulns(deny, findings)] == [
        ("deny_vulns", "app"),
        ("deny_vulns", "big"),
        ("deny_vulns", "big"),
        ("deny_vulns", "nohash"),
    ]
    medium = policy_from_dict({"max_severity": "medium"}, "p.yaml")
    broken = check_vulns(medium, findings)
    assert [(v.project, v.message) for v in broken] == [
        ("app", "affected by PYSEC-2026-4: unknown severity > medium"),
        ("lib", "affected by PYSEC-2026-1: critical > medium, fixed in 2.1"),
    ]
    assert check_vulns(policy_from_dict({"max_severity": "critical"}, "p.yaml"), findings)[
        0
    ].message.startswith("affected by PYSEC-2026-4: unknown severity")
    unchecked = check_vulns(medium, None)
    assert [str(v) for v in unchecked] == [
        "(plan): max_severity: no vulnerability database given (--vulns DB)"
    ]
    assert check_vulns(policy_from_dict({}, "p.yaml"), None) == []
    with pytest.raises(FileFormatError, match="max_severity"):
        policy_from_dict({"max_severity": "severe"}, "p.yaml")


def test_cli_vulns(tmp_path: Path, run_cli: RunCli) -> None:
    db = _write_zip(tmp_path / "all.zip", RECORDS)
    report = run_cli("audit", PLAN, "--vulns", db)
    assert report.returncode == 0, report.stderr
    assert "Known vulnerabilities (5):" in report.stdout
    assert "PYSEC-2026-1" in report.stdout and "PYSEC-2026-3" not in report.stdout

    policy = tmp_path / "policy.yaml"
    policy.write_text("max_severity: high\nignore_vulns: [PYSEC-2026-4]\n")
    failed = run_cli("audit", PLAN, "--vulns", db, "--policy", policy, "--format", "json")
    assert failed.returncode == 1, failed.stderr
    document = json.loads(failed.stdout)
    assert document["vulns"] == str(db)
    assert len(document["audit"]["vulnerabilities"]) == 5
    assert [(v["rule"], v["project"]) for v in document["violations"]] == [("max_severity", "lib")]

    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("max_severity: critical\nignore_vulns: [PYSEC-2026-4]\n")
    assert run_cli("audit", PLAN, "--vulns", db, "--policy", lenient).returncode == 0

    no_db = run_cli("audit", PLAN, "--policy", policy)
    assert no_db.returncode == 1
    assert "(plan): max_severity: no vulnerability database given" in no_db.stdout

    bad = _write_zip(tmp_path / "bad.zip", [{"id": "X", "affected": []}])
    broken = run_cli("audit", PLAN, "--vulns", bad)
    assert broken.returncode == 2
    assert broken.stderr == f"fetchplan: error: {bad}:X.json: modified: is required\n"


def test_cli_vulns_without_network(
    tmp_path: Path, fetchplan_cmd: list[str], cli_env: dict[str, str]
) -> None:
    db = _write_zip(tmp_path / "all.zip", RECORDS)
    done = run_without_network(
        [*fetchplan_cmd, "audit", str(PLAN), "--vulns", str(db), "--format", "json"],
        cli_env,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)["audit"]["vulnerabilities"]
    assert sorted((v["project"], v["id"]) for v in found) == sorted((e[0], e[2]) for e in EXPECTED)
