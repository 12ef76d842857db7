"""Plan diffs as data cases (tests/data/diff/), through the library and the command line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from fetchplan.review.diff import diff_plans, render_diff
from fetchplan.schemas.plan import (
    Artifact,
    IndexRef,
    Inputs,
    Plan,
    ProjectStatus,
    Target,
    write_plan,
)
from tests.conftest import RunCli

DATA = Path(__file__).parent / "data" / "diff"
CASES = sorted(DATA.glob("*.yaml"))
INDEX = "https://index.example.org/simple/"


def _artifact(short: dict[str, Any]) -> Artifact:
    filename = short["file"]
    if filename.endswith(".whl"):
        name, version = parse_wheel_filename(filename)[:2]
    else:
        name, version = parse_sdist_filename(filename)
    return Artifact(
        name=canonicalize_name(name),
        version=str(version),
        kind="wheel" if filename.endswith(".whl") else "sdist",
        filename=filename,
        url=f"https://{short.get('host', 'files.example.org')}/packages/{filename}",
        index=INDEX,
        hashes={"sha256": str(short.get("sha", "0")) * 64},
        hash_source="index",
        size=short.get("size"),
        project_status=(
            ProjectStatus(status=short["status"], reason=short.get("reason"))
            if "status" in short
            else None
        ),
        destination=filename,
    )


def _plan(shorts: list[dict[str, Any]]) -> Plan:
    return Plan(
        created="2026-01-01T00:00:00Z",
        inputs=Inputs(requirements=("app",)),
        targets=(Target(name="default", markers={}, tags=("py3-none-any",)),),
        indexes=(IndexRef(url=INDEX),),
        destination="wheels",
        artifacts=tuple(_artifact(s) for s in shorts),
    )


@pytest.mark.parametrize("case", CASES, ids=[p.stem for p in CASES])
def test_diff_case(
    case: Path, tmp_path: Path, fetchplan_cmd: list[str], cli_env: dict[str, str]
) -> None:
    data = yaml.safe_load(case.read_text())
    expect = data["expect"]
    old, new = _plan(data["old"]), _plan(data["new"])
    diff = diff_plans(old, new)
    assert [[c.project, c.kind, list(c.old), list(c.new)] for c in diff.projects] == expect.get(
        "projects", []
    )
    assert [[c.filename, c.host_changed] for c in diff.files if c.old_url != c.new_url] == (
        expect.get("urls", [])
    )
    assert [
        [c.filename, c.old_size, c.new_size] for c in diff.files if c.old_size != c.new_size
    ] == (expect.get("sizes", []))
    assert [c.filename for c in diff.hashes] == expect.get("hash_changes", [])
    assert list(diff.files_added) == expect.get("files_added", [])
    assert list(diff.files_removed) == expect.get("files_removed", [])
    assert [[c.project, c.old, c.new, c.reason] for c in diff.statuses] == expect.get(
        "status_changes", []
    )
    assert diff.empty == (not expect)

    write_plan(tmp_path / "old.json", old)
    write_plan(tmp_path / "new.json", new)
    result = subprocess.run(
        [*fetchplan_cmd, "diff", str(tmp_path / "old.json"), str(tmp_path / "new.json")],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=60,
        check=False,
    )
    assert result.returncode == expect.get("exit", 0), result.stderr
    assert result.stdout == render_diff(diff)
    assert result.stdout.startswith("WARNING:") == (expect.get("exit", 0) == 1)


def test_rendered_report_and_json(
    tmp_path: Path, fetchplan_cmd: list[str], cli_env: dict[str, str]
) -> None:
    data = yaml.safe_load((DATA / "hash-changed.yaml").read_text())
    diff = diff_plans(_plan(data["old"]), _plan(data["new"]))
    text = render_diff(diff)
    assert text.splitlines()[0].startswith("WARNING: 1 file(s) of an unchanged project version")
    assert "a" * 64 in text and "c" * 64 in text
    assert "Upgraded projects:" in text

    sizes = yaml.safe_load((DATA / "urls-sizes.yaml").read_text())
    moved = render_diff(diff_plans(_plan(sizes["old"]), _plan(sizes["new"])))
    assert "HOST CHANGED" in moved
    assert "Total size: 300 B -> 357 B (+57 B) (unknown sizes: 1 -> 0)" in moved

    write_plan(tmp_path / "old.json", _plan(data["old"]))
    write_plan(tmp_path / "new.json", _plan(data["new"]))
    result = subprocess.run(
        [
            *fetchplan_cmd,
            "diff",
            "--format",
            "json",
            str(tmp_path / "old.json"),
            str(tmp_path / "new.json"),
        ],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["hash_changes"][0]["new"] == "c" * 64
    assert document["projects"][0]["kind"] == "upgraded"


def test_status_changes_rendered_and_in_json(run_cli: RunCli, tmp_path: Path) -> None:
    data = yaml.safe_load((DATA / "status-changed.yaml").read_text())
    old, new = _plan(data["old"]), _plan(data["new"])
    text = render_diff(diff_plans(old, new))
    lines = text.splitlines()
    assert lines[0].startswith("WARNING: 2 project(s) changed PEP 792 status.")
    warned = lines[1 : lines.index("")]
    assert [row.split()[:3] for row in warned[2:]] == [
        ["app", "active", "ARCHIVED"],
        ["old", "archived", "QUARANTINED"],
    ]
    assert warned[2].endswith("moved to app2")
    listed = lines.index("Changed project status:")
    assert lines[listed + 3].split() == ["lib", "deprecated", "active"]
    # Back to active alone is no warning: exit 0.
    back = diff_plans(_plan(data["old"][1:2]), _plan(data["new"][1:2]))
    assert not back.warnings and not render_diff(back).startswith("WARNING")
    write_plan(tmp_path / "old.json", old)
    write_plan(tmp_path / "new.json", new)
    result = run_cli("diff", "--format", "json", tmp_path / "old.json", tmp_path / "new.json")
    assert result.returncode == 1, result.stderr
    changes = json.loads(result.stdout)["status_changes"]
    assert [(c["project"], c["new"], c["warning"]) for c in changes] == [
        ("app", "archived", True),
        ("lib", "active", False),
        ("old", "quarantined", True),
    ]
