"""``plan --override FILE`` (uv's: every requirement on the project, anywhere in the graph,
replaced) and ``--no-deps``: planned through the CLI against a real loopback index, compared
with ``uv pip compile`` on the same index, recorded in the plan's inputs, and shown by
``show`` and ``export``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fetchplan.schemas.plan import load_plan
from tests.conftest import MakeIndexServer, RunCli
from tests.support.servers import IndexServer
from tests.support.tools import uv_pins
from tests.support.wheels import Dist

DISTS = [
    Dist("app", "1.0", requires=["lib<2", "helper"], extras={"x": ["extra-dep"]}),
    Dist("helper", "1.0", requires=["lib>=1,<3"]),
    Dist("lib", "1.0"),
    Dist("lib", "2.0"),
    Dist("lib", "3.0"),
    Dist("extra-dep", "1.0", requires=["lib"]),
]


@pytest.fixture
def index(index_server: MakeIndexServer) -> IndexServer:
    return index_server(DISTS)


def _plan(run_cli: RunCli, index: IndexServer, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("plan", *args, "-i", index.index_url, "--isolated", "--no-cache")


def _planned(tmp_path: Path) -> dict[str, str]:
    plan, _document = load_plan(tmp_path / "plan.json")
    return {a.name: a.version for a in plan.artifacts}


@pytest.mark.parametrize(
    "case",
    [
        (("app",), "lib==2.0\n"),
        (("app",), "lib>=3\n"),
        (("app[x]",), "lib==2.0\n"),
        (("app", "lib<2"), "lib==3.0\n"),
        (("app",), "lib==3.0; python_version < '3'\nlib==2.0; python_version >= '3'\n"),
        (("app",), "lib==3.0; python_version < '3'\n"),
        (("app",), "helper>=1\nlib==2.0\n"),
    ],
    ids=[
        "pin-a-dependency",
        "past-an-upper-bound",
        "through-an-extra",
        "the-users-own",
        "by-marker",
        "false-marker",
        "two-projects",
    ],
)
def test_overrides_plan_what_uv_compiles(
    index: IndexServer, run_cli: RunCli, tmp_path: Path, case: tuple[tuple[str, ...], str]
) -> None:
    requirements, overrides = case
    (tmp_path / "overrides.txt").write_text(overrides)
    (tmp_path / "in.txt").write_text("".join(f"{r}\n" for r in requirements))
    out = _plan(run_cli, index, "-r", "in.txt", "--override", "overrides.txt")
    assert out.returncode == 0, out.stderr
    planned = _planned(tmp_path)
    assert planned == uv_pins(tmp_path, index.index_url, "in.txt", "--override", "overrides.txt")
    _plan_obj, document = load_plan(tmp_path / "plan.json")
    assert document["inputs"]["requirements"] == list(requirements)
    assert len(document["inputs"]["overrides"]) == len(overrides.splitlines())


def test_no_deps_plans_the_requirements_alone(
    index: IndexServer, run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / "in.txt").write_text("app[x]\nlib<3\n")
    out = _plan(run_cli, index, "-r", "in.txt", "--no-deps")
    assert out.returncode == 0, out.stderr
    planned = _planned(tmp_path)
    assert planned == {"app": "1.0", "lib": "2.0"}
    assert planned == uv_pins(tmp_path, index.index_url, "in.txt", "--no-deps")
    _plan_obj, document = load_plan(tmp_path / "plan.json")
    assert document["inputs"]["options"]["no_deps"] is True

    shown = run_cli("show", "plan.json")
    assert shown.returncode == 0, shown.stderr
    assert "planned without dependencies (--no-deps)" in shown.stdout
    exported = run_cli("export", "plan.json", "--format", "requirements")
    assert exported.returncode == 0, exported.stderr
    assert "pip install --no-deps --require-hashes -r THIS_FILE" in exported.stdout


def test_recorded_overrides_are_shown_exported_and_replan_the_same(
    index: IndexServer, run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / "overrides.txt").write_text("lib==2.0\n")
    out = _plan(run_cli, index, "app", "--override", "overrides.txt")
    assert out.returncode == 0, out.stderr
    plan, document = load_plan(tmp_path / "plan.json")
    assert document["inputs"]["overrides"] == ["lib==2.0"]
    assert "no_deps" not in document["inputs"]["options"]

    shown = run_cli("show", "plan.json")
    assert "overrides: lib==2.0 (--override)" in shown.stdout
    exported = run_cli("export", "plan.json", "--format", "requirements")
    assert "planned with --override lib==2.0" in exported.stdout

    # The inputs recorded are all a re-plan needs.
    (tmp_path / "again.txt").write_text("".join(f"{o}\n" for o in document["inputs"]["overrides"]))
    again = run_cli(
        "plan", *document["inputs"]["requirements"], "--override", "again.txt",
        "-i", index.index_url, "--isolated", "--no-cache", "-o", "again.json",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    replanned, _ = load_plan(tmp_path / "again.json")
    assert [a.url for a in replanned.artifacts] == [a.url for a in plan.artifacts]

    # Without the override, lib<2 of app wins: the override is what moved it.
    plain = _plan(run_cli, index, "app", "-o", "plain.json")
    assert plain.returncode == 0, plain.stderr
    moved, _ = load_plan(tmp_path / "plain.json")
    assert {str(a.name): a.version for a in moved.artifacts}["lib"] == "1.0"
    diff = run_cli("diff", "plain.json", "plan.json")
    assert "lib" in diff.stdout and "2.0" in diff.stdout, diff.stdout


def test_an_override_with_a_hash_is_refused(
    index: IndexServer, run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / "overrides.txt").write_text("lib==2.0 --hash=sha256:" + "0" * 64 + "\n")
    out = _plan(run_cli, index, "app", "--override", "overrides.txt")
    assert out.returncode == 2
    assert out.stderr.strip().endswith(
        "overrides.txt:1: an override takes no --hash: it chooses versions, and the files "
        "are checked as any other"
    ), out.stderr
    assert not (tmp_path / "plan.json").exists()
