"""The audit report of a plan: its content, the text and JSON forms, and the CLI's exit codes."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from fetchplan.review.audit import audit_plan, render_audit
from fetchplan.schemas.plan import AttestationBundle, ProjectStatus, load_plan, write_plan
from tests.conftest import RunCli

PLAN = Path(__file__).parent / "data" / "policy" / "plan.json"
# An in-toto predicate type as a verified bundle records it (an opaque URI to fetchplan).
PUBLISH_PREDICATE = "https://attestations.example/publish/v1"


def test_audit_content() -> None:
    plan = load_plan(PLAN)[0]
    audit = audit_plan(plan, large_threshold=100 * 10**6)
    hosts = {h.host: h for h in audit.hosts}
    assert set(hosts) == {
        "files.example.org",
        "index.example.org",
        "mirror.example.net:8080",
        "(local files)",
    }
    files = hosts["files.example.org"]
    assert (files.schemes, files.roles, files.artifacts) == (("https",), ("files",), 3)
    assert files.bytes == 2048 + 300000000 + 1200000
    assert not files.insecure
    mirror = hosts["mirror.example.net:8080"]
    assert (mirror.roles, mirror.artifacts, mirror.bytes, mirror.insecure) == (
        ("files", "index"),
        2,
        540000,
        True,
    )
    local = hosts["(local files)"]
    assert (local.schemes, local.roles, local.unknown_sizes) == (
        ("file",),
        ("files", "find-links", "index"),
        1,
    )
    assert hosts["index.example.org"].artifacts == 0
    assert [n.filename for n in audit.without_sha256] == ["nohash-0.1-py3-none-any.whl"]
    assert [(n.project, n.detail) for n in audit.yanked] == [("big", "broken build")]
    assert [n.filename for n in audit.sdists] == ["lib-2.0.tar.gz", "big-3.0.tar.gz"]
    assert audit.several_indexes == (
        ("big", ("https://index.example.org/simple/", "http://mirror.example.net:8080/simple/")),
    )
    assert [n.project for n in audit.large] == ["big"]
    assert audit.requested == ("app",)
    assert audit.transitive == ("big", "lib", "nohash")
    assert audit.build_only == ("setuptools",)
    assert [(n.project, n.detail) for n in audit.upload_times] == [("app", "2025-05-06T07:08:09Z")]
    assert audit.provenance[0].detail is not None and audit.provenance[0].detail.endswith(
        "/provenance"
    )
    assert (audit.artifacts, audit.unknown_sizes) == (6, 1)
    assert audit.total_bytes == 2048 + 500000 + 300000000 + 40000 + 1200000

    text = render_audit(audit)
    assert re.search(
        r"\n  mirror\.example\.net:8080 +http +files,index +2 +540\.0 kB +INSECURE: plain http\n",
        text,
    )
    assert "Artifacts larger than 100.0 MB:" in text
    assert re.search(r"\n  nohash +0\.1 +nohash-0\.1-py3-none-any\.whl +no hash at all\n", text)
    assert json.loads(json.dumps(audit.to_dict()))["projects"]["requested"] == ["app"]


def test_audit_threshold_moves_large_list() -> None:
    plan = load_plan(PLAN)[0]
    assert [n.filename for n in audit_plan(plan, large_threshold=1000).large] == [
        "app-1.0-py3-none-any.whl",
        "lib-2.0.tar.gz",
        "big-3.0-cp312-cp312-manylinux_2_17_x86_64.whl",
        "big-3.0.tar.gz",
        "setuptools-80.0-py3-none-any.whl",
    ]


def test_cli_exit_codes_and_formats(tmp_path: Path, run_cli: RunCli) -> None:
    plain = run_cli("audit", str(PLAN))
    assert plain.returncode == 0, plain.stderr
    assert "Hosts contacted:" in plain.stdout

    strict = tmp_path / "strict.yaml"
    strict.write_text("require_hashes: true\nyanked: forbid\n")
    failed = run_cli("audit", str(PLAN), "--policy", str(strict))
    assert failed.returncode == 1
    assert f"Policy {strict}: 2 violation(s)" in failed.stdout
    assert "  nohash-0.1-py3-none-any.whl: require_hashes: has no sha256" in failed.stdout

    as_json = run_cli("audit", str(PLAN), "--policy", str(strict), "--format", "json")
    assert as_json.returncode == 1
    document = json.loads(as_json.stdout)
    assert [v["rule"] for v in document["violations"]] == ["yanked", "require_hashes"]
    assert document["audit"]["artifacts"] == 6

    lenient = tmp_path / "lenient.json"
    lenient.write_text('{"version": 1, "allowed_hosts": ["*.example.org", "mirror.example.net"]}')
    passed = run_cli("audit", str(PLAN), "--policy", str(lenient))
    assert passed.returncode == 0, passed.stdout
    assert "no violations" in passed.stdout

    broken = tmp_path / "broken.yaml"
    broken.write_text("max_file_size: lots\n")
    bad = run_cli("audit", str(PLAN), "--policy", str(broken))
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"fetchplan: error: {broken}: max_file_size: ")
    assert bad.stdout == ""

    threshold = run_cli("audit", str(PLAN), "--large-file", "huge")
    assert threshold.returncode == 2
    assert "--large-file: not a size: 'huge'" in threshold.stderr


def _every_finding_plan(tmp_path: Path) -> Path:
    """The policy test plan with each kind of finding issue 20 brought: a verified publisher,
    a provenance URL not verified, a young upload, an archived project, and the plan's
    upload-time cut-offs."""
    base = load_plan(PLAN)[0]
    bad_provenance = tmp_path / "lib.provenance"
    bad_provenance.write_text('{"version": 1, "attestation_bundles": []}')
    young = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    publisher: dict[str, str | None] = {
        "kind": "GitHub",
        "repository": "org/app",
        "workflow": "r.yml",
    }
    changed: dict[str, dict[str, Any]] = {
        # Recorded as verified (no provenance URL left: --attestations fetches nothing for it).
        "app-1.0-py3-none-any.whl": {
            "upload_time": young,
            "provenance": None,
            "project_status": ProjectStatus(status="archived", reason="moved to app2"),
            "attestations": (
                AttestationBundle(
                    publisher=publisher,
                    predicate_types=(PUBLISH_PREDICATE,),
                ),
            ),
        },
        "lib-2.0.tar.gz": {"provenance": bad_provenance.as_uri()},
    }
    artifacts = tuple(replace(a, **changed.get(a.filename, {})) for a in base.artifacts)
    options = {
        **base.inputs.options,
        "exclude_newer": "2026-01-01T00:00:00Z",
        "exclude_newer_package": {"lib": False, "app": "2026-02-01T00:00:00Z"},
    }
    plan = replace(base, inputs=replace(base.inputs, options=options), artifacts=tuple(artifacts))
    path = tmp_path / "plan.json"
    write_plan(path, plan)
    return path


def test_audit_json_carries_every_finding(tmp_path: Path, run_cli: RunCli) -> None:
    """``audit --format json``: attestations (verified, unattested, failed), provenance, upload
    times, the plan's cut-offs, project statuses, vulnerabilities, and the policy's
    violations of publishers, require_attestations, min_age, deny_project_status and
    deny_vulns."""
    plan = _every_finding_plan(tmp_path)
    osv = tmp_path / "osv"
    osv.mkdir()
    record = {
        "schema_version": "1.6.0",
        "id": "PYSEC-2026-9",
        "modified": "2026-03-04T05:06:07Z",
        "summary": "app leaks",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "app"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1"}]}
                ],
            }
        ],
    }
    (osv / "PYSEC-2026-9.json").write_text(json.dumps(record))
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        json.dumps(
            {
                "require_attestations": ["lib"],
                "publishers": {"app": ["github:org/other"]},
                "min_age": "7 days",
                "deny_project_status": ["archived"],
                "deny_vulns": True,
            }
        )
    )
    done = run_cli("audit", plan, "--format", "json", "--vulns", osv, "--policy", policy)
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    found = document["audit"]
    assert [(n["identities"], n["predicate_types"]) for n in found["attestations"]["verified"]] == [
        (["github:org/app:r.yml"], [PUBLISH_PREDICATE])
    ]
    assert "lib-2.0.tar.gz" in {n["filename"] for n in found["attestations"]["unattested"]}
    assert found["attestations"]["failed"] == []
    assert [n["filename"] for n in found["provenance"]] == ["lib-2.0.tar.gz"]
    assert "app-1.0-py3-none-any.whl" in {n["filename"] for n in found["upload_times"]}
    assert found["exclude_newer"] == {
        "cut_off": "2026-01-01T00:00:00Z",
        "packages": {"app": "2026-02-01T00:00:00Z", "lib": None},
    }
    assert [(s["project"], s["status"], s["reason"]) for s in found["project_statuses"]] == [
        ("app", "archived", "moved to app2")
    ]
    assert [(v["project"], v["id"]) for v in found["vulnerabilities"]] == [("app", "PYSEC-2026-9")]
    rules = {v["rule"] for v in document["violations"]}
    assert {
        "publishers",
        "require_attestations",
        "min_age",
        "project_status",
        "deny_vulns",
    } <= rules

    text = run_cli("audit", plan).stdout
    assert "Upload-time cut-off (plan --exclude-newer): 2026-01-01T00:00:00Z\n" in text
    assert "  lib: none (--exclude-newer-package)\n" in text

    # --attestations: the provenance the plan names fails to verify, and is listed as failed.
    checked = run_cli("audit", plan, "--format", "json", "--attestations")
    assert checked.returncode == 1
    (failure,) = json.loads(checked.stdout)["audit"]["attestations"]["failed"]
    assert failure["filename"] == "lib-2.0.tar.gz"
    assert failure["detail"] == "the provenance object holds no attestation bundle"
