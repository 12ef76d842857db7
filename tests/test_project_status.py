"""PEP 792 project status markers: read from JSON and HTML pages, recorded in the plan,
listed by the audit, denied by a policy; a quarantined project is refused when planning."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from packaging.utils import NormalizedName

from fetchplan.planner.api import PlanOptions, make_plan
from fetchplan.planner.index import (
    CompactPage,
    CompactPageError,
    compact_html_page,
    compact_json_page,
)
from fetchplan.planner.resolve import UnknownProject
from fetchplan.review.audit import audit_plan, render_audit
from fetchplan.review.policy import check_policy, policy_from_dict
from fetchplan.schemas.plan import ProjectStatus, load_plan, write_plan
from tests.conftest import MakeIndexServer, RunCli
from tests.support.index import IndexOptions
from tests.support.servers import ServerOptions
from tests.support.wheels import Dist

PAGE = "https://index.test/simple/demo/"
DEMO = NormalizedName("demo")
FILES = [{"filename": "demo-1.0.tar.gz", "url": "demo-1.0.tar.gz", "hashes": {}}]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"status": "archived", "reason": "moved to demo2"}, ("archived", "moved to demo2")),
        ({"status": "deprecated"}, ("deprecated", None)),
        ({"status": "archived", "reason": "gone\n\x1b[2Jaway"}, ("archived", "gone  [2Jaway")),
        ({"status": "quarantined", "reason": " "}, ("quarantined", None)),
        ({"status": "active", "reason": "fine"}, None),
        ({"status": "haunted"}, None),
        ("archived", None),
    ],
)
def test_json_page_status(status: object, expected: tuple[str, str | None] | None) -> None:
    document = {"meta": {"api-version": "1.4"}, "project-status": status, "files": FILES}
    page = compact_json_page(json.dumps(document), PAGE, DEMO)
    assert page.status == expected
    (link,) = page.all_links(PAGE)
    assert link.project_status == expected
    # Kept in the page cache and read back, the status stays; a damaged one is a miss.
    assert CompactPage.from_data(page.to_data()) == page
    for bad in (("haunted", None), ("archived", 1), "archived"):
        with pytest.raises(CompactPageError, match="bad project status"):
            CompactPage.from_data((*page.to_data()[:-1], bad))
    # A page msgspec refuses (NaN) is read by the standard library's reader: the same status.
    slow = json.dumps(document)[:-1] + ', "extra": NaN}'
    assert compact_json_page(slow, PAGE, DEMO).status == expected


def test_html_page_status_from_meta_tags() -> None:
    html = (
        '<html><head><meta name="pypi:repository-version" content="1.4">'
        '<meta name="pypi:project-status" content="quarantined">'
        '<meta name="pypi:project-status-reason" content="malware &amp; worse">'
        '</head><body><a href="demo-1.0.tar.gz">demo-1.0.tar.gz</a></body></html>'
    )
    page = compact_html_page(html, PAGE, DEMO)
    assert page.status == ("quarantined", "malware & worse")
    plain = compact_html_page('<a href="demo-1.0.tar.gz">x</a>', PAGE, DEMO)
    assert plain.status is None


def _plan(server_url: str, tmp_path: Path, *requirements: str) -> Path:
    plan_path = tmp_path / "plan.json"
    result = make_plan(
        PlanOptions(
            requirements=requirements,
            index_url=server_url,
            isolated=True,
            no_cache=True,
            output=plan_path,
        )
    )
    write_plan(plan_path, result.plan)
    return plan_path


STATUSES = IndexOptions(
    project_status={
        "old": ("archived", "no longer maintained"),
        "legacy": ("deprecated", None),
        "fine": ("active", None),
    }
)
DISTS = [
    Dist("app", "1.0", requires=["old", "legacy", "fine"]),
    Dist("old", "1.0"),
    Dist("legacy", "2.0"),
    Dist("fine", "1.0"),
]


@pytest.mark.parametrize("formats", ["json", "html"])
def test_status_recorded_audited_and_denied(
    formats: str, tmp_path: Path, index_server: MakeIndexServer, run_cli: RunCli
) -> None:
    server = index_server(
        DISTS,
        index_options=STATUSES,
        options=ServerOptions(formats="json" if formats == "json" else "html"),
    )
    plan_path = _plan(server.index_url, tmp_path, "app")
    plan = load_plan(plan_path)[0]
    statuses = {a.name: a.project_status for a in plan.artifacts}
    assert statuses == {
        "app": None,
        "fine": None,
        "legacy": ProjectStatus(status="deprecated", reason=None),
        "old": ProjectStatus(status="archived", reason="no longer maintained"),
    }

    audit = audit_plan(plan)
    assert audit.project_statuses == (
        ("legacy", "deprecated", None, server.index_url),
        ("old", "archived", "no longer maintained", server.index_url),
    )
    assert re.search(r"\n  old +archived +no longer maintained +http://", render_audit(audit))
    shown = run_cli("audit", plan_path, "--format", "json")
    assert shown.returncode == 0
    assert [
        (s["project"], s["status"]) for s in json.loads(shown.stdout)["audit"]["project_statuses"]
    ] == [("legacy", "deprecated"), ("old", "archived")]
    table = run_cli("show", plan_path)
    assert table.returncode == 0, table.stderr
    assert re.search(r"^old +1\.0 .* fetch \(archived\)$", table.stdout, flags=re.M)
    assert re.search(r"^legacy +2\.0 .* fetch \(deprecated\)$", table.stdout, flags=re.M)
    assert re.search(r"^fine +1\.0 .* fetch$", table.stdout, flags=re.M)
    assert "PUBLISHER" not in table.stdout  # nothing verified: no such column
    assert "project legacy is deprecated (PEP 792)\n" in table.stdout
    assert "project old is archived (PEP 792): no longer maintained\n" in table.stdout

    policy = policy_from_dict({"deny_project_status": ["archived"]}, "policy.yaml")
    (violation,) = check_policy(plan, policy)
    assert str(violation) == (
        "old-1.0-py3-none-any.whl: project_status: old is archived on its index "
        "(no longer maintained)"
    )
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(yaml.safe_dump({"deny_project_status": ["archived", "deprecated"]}))
    refused = run_cli("fetch", plan_path, "--policy", policy_path)
    assert refused.returncode != 0
    lines = [line for line in refused.stderr.splitlines() if line.startswith("fetchplan: policy:")]
    assert [line.split(": ")[2] for line in lines] == [
        "legacy-2.0-py3-none-any.whl",
        "old-1.0-py3-none-any.whl",
    ]


@pytest.mark.parametrize("formats", ["json", "html"])
def test_quarantined_project_is_refused_like_an_unknown_one(
    formats: str, tmp_path: Path, index_server: MakeIndexServer, run_cli: RunCli
) -> None:
    quarantined = IndexOptions(project_status={"evil": ("quarantined", "malware reported")})
    server = index_server(
        [Dist("app", "1.0", requires=["evil>=1"]), Dist("evil", "1.0")],
        index_options=quarantined,
        options=ServerOptions(formats="json" if formats == "json" else "html"),
    )
    # The same project on an extra index is not taken instead (first-index).
    extra = index_server([Dist("evil", "1.0")])
    with pytest.raises(UnknownProject) as info:
        make_plan(
            PlanOptions(
                requirements=("app",),
                index_url=server.index_url,
                extra_index_urls=(extra.index_url,),
                isolated=True,
                no_cache=True,
                output=tmp_path / "plan.json",
            )
        )
    assert str(info.value) == (
        f"project 'evil' is quarantined (PEP 792: considered unsafe, e.g. malware) on "
        f"{server.index_url} (malware reported): refused; needed because app 1.0 depends on "
        "evil>=1"
    )
    assert not extra.requests("/simple/evil/")
    assert not server.requests("/files/evil")
    direct = run_cli("plan", "evil", "-i", server.index_url, "--isolated", "--no-cache")
    assert direct.returncode != 0
    assert direct.stderr.splitlines()[-1] == (
        f"fetchplan: error: project 'evil' is quarantined (PEP 792: considered unsafe, e.g. "
        f"malware) on {server.index_url} (malware reported): refused; needed because the user "
        "requested evil (<command line>)"
    )
    assert not (tmp_path / "plan.json").exists()
