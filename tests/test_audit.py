"""The audit report of a plan: its content, the text and JSON forms, and the CLI's exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fetchplan.review.audit import audit_plan, render_audit
from fetchplan.schemas.plan import load_plan
from tests.conftest import RunCli

PLAN = Path(__file__).parent / "data" / "policy" / "plan.json"


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
