"""``pyproject.toml`` as an input (``-r pyproject.toml``, or as an argument) with ``--extra``
and ``--all-extras``, and PEP 735 ``--group [PATH:]NAME``: planned through the CLI against a
real loopback index, compared with what uv (project and extras) and the newest pip (groups)
resolve for the same input on the same index."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from textwrap import dedent

import pytest
from packaging.utils import canonicalize_name

from fetchplan.schemas.plan import load_plan
from tests.conftest import MakeIndexServer, RunCli
from tests.support.servers import IndexServer
from tests.support.tools import run_ok, uv_pins
from tests.support.wheels import Dist

DISTS = [
    Dist("base", "1.0", requires=["leaf>=1"]),
    Dist("leaf", "1.0"),
    Dist("leaf", "2.0"),
    Dist("fast", "1.0"),
    Dist("docs-tool", "3.0"),
    Dist("lint", "0.5"),
    Dist("testing", "8.0", requires=["leaf<2"]),
]

PYPROJECT = dedent(
    """\
    [build-system]
    requires = ["setuptools"]
    build-backend = "setuptools.build_meta"

    [tool.setuptools]
    py-modules = []

    [project]
    name = "My_App"
    version = "0.1"
    dependencies = ["base"]

    [project.optional-dependencies]
    fast = ["fast"]
    Docs = ["docs-tool>=2"]
    all = ["my-app[fast,docs]"]

    [dependency-groups]
    lint = ["lint"]
    test = ["testing", {include-group = "lint"}]
    """
)


@pytest.fixture
def index(index_server: MakeIndexServer) -> IndexServer:
    return index_server(DISTS)


@pytest.fixture
def index_with_setuptools(index_server: MakeIndexServer, test_tools: Path) -> IndexServer:
    """The index and the setuptools wheel of the test tools, for pip to build the project's
    metadata with."""
    setuptools = sorted(test_tools.glob("setuptools-*.whl"))
    if not setuptools:
        pytest.fail(f"no setuptools wheel in {test_tools}")
    return index_server([*DISTS, setuptools[-1]])


def _write(tmp_path: Path, text: str = PYPROJECT, name: str = "pyproject.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _planned(tmp_path: Path, name: str = "plan.json") -> dict[str, str]:
    plan, _document = load_plan(tmp_path / name)
    return {a.name: a.version for a in plan.artifacts}


def _plan(run_cli: RunCli, index: IndexServer, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("plan", *args, "-i", index.index_url, "--isolated", "--no-cache")


def _uv_pins(tmp_path: Path, index: IndexServer, *args: str) -> dict[str, str]:
    return uv_pins(tmp_path, index.index_url, *args)


@pytest.mark.parametrize(
    "args",
    [
        ("-r", "pyproject.toml"),
        ("pyproject.toml",),
        ("-r", "pyproject.toml", "--extra", "fast"),
        ("-r", "pyproject.toml", "--extra", "DOCS", "--extra", "fast"),
        ("-r", "pyproject.toml", "--extra", "all"),
        ("-r", "pyproject.toml", "--all-extras"),
    ],
    ids=["r", "argument", "extra", "two-extras", "self-referring-extra", "all-extras"],
)
def test_project_and_extras_plan_what_uv_compiles(
    index: IndexServer, run_cli: RunCli, tmp_path: Path, args: tuple[str, ...]
) -> None:
    _write(tmp_path)
    out = _plan(run_cli, index, *args)
    assert out.returncode == 0, out.stderr
    uv_args = [a for a in args if a != "-r"]
    assert _planned(tmp_path) == _uv_pins(tmp_path, index, *uv_args)
    _plan_obj, document = load_plan(tmp_path / "plan.json")
    # What was read is recorded as the requirements it gave (re-planning needs no pyproject).
    assert "base" in document["inputs"]["requirements"]


@pytest.mark.parametrize("extras", ["", "fast", "all"])
def test_project_and_extras_plan_what_the_newest_pip_installs(
    index_with_setuptools: IndexServer,
    run_cli: RunCli,
    tmp_path: Path,
    newest_pip: Path,
    extras: str,
) -> None:
    project = _write(tmp_path / "proj")
    index = index_with_setuptools
    option = ("--extra", extras) if extras else ()
    out = _plan(run_cli, index, "-r", str(project), *option)
    assert out.returncode == 0, out.stderr
    report = tmp_path / "report.json"
    run_ok(
        [
            str(newest_pip), "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--quiet", "--no-cache-dir", "--disable-pip-version-check",
            "--index-url", index.index_url, f"./proj[{extras}]" if extras else "./proj",
            "--report", str(report),
        ],
        cwd=tmp_path,
    )  # fmt: skip
    pips = {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
        if canonicalize_name(item["metadata"]["name"]) != "my-app"
    }
    assert _planned(tmp_path) == pips


def test_all_extras_names_every_extra(index: IndexServer, run_cli: RunCli, tmp_path: Path) -> None:
    _write(tmp_path)
    out = _plan(run_cli, index, "-r", "pyproject.toml", "--all-extras")
    assert out.returncode == 0, out.stderr
    assert _planned(tmp_path) == {
        "base": "1.0",
        "leaf": "2.0",
        "fast": "1.0",
        "docs-tool": "3.0",
    }


def test_groups_plan_what_the_newest_pip_installs(
    index: IndexServer, run_cli: RunCli, tmp_path: Path, newest_pip: Path
) -> None:
    _write(tmp_path / "sub", name="pyproject.toml")
    _write(tmp_path)
    out = _plan(run_cli, index, "--group", "test", "--group", "sub/pyproject.toml:lint")
    assert out.returncode == 0, out.stderr
    planned = _planned(tmp_path)
    assert planned == {"testing": "8.0", "leaf": "1.0", "lint": "0.5"}
    report = tmp_path / "report.json"
    run_ok(
        [
            str(newest_pip),
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--index-url",
            index.index_url,
            "--group",
            "test",
            "--group",
            "sub/pyproject.toml:lint",
            "--report",
            str(report),
        ],
        cwd=tmp_path,
    )
    pips = {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert planned == pips


def test_groups_combine_with_the_project(
    index: IndexServer, run_cli: RunCli, tmp_path: Path
) -> None:
    _write(tmp_path)
    out = _plan(run_cli, index, "-r", "pyproject.toml", "--group", "lint")
    assert out.returncode == 0, out.stderr
    assert _planned(tmp_path) == {"base": "1.0", "leaf": "2.0", "lint": "0.5"}
    assert _planned(tmp_path) == _uv_pins(
        tmp_path, index, "pyproject.toml", "--group", "pyproject.toml:lint"
    )


@pytest.mark.parametrize(
    "case",
    [
        (
            PYPROJECT.replace('dependencies = ["base"]', 'dynamic = ["dependencies"]'),
            ("-r", "pyproject.toml"),
            "pyproject.toml: project.dependencies is dynamic",
        ),
        (PYPROJECT, ("-r", "pyproject.toml", "--extra", "nope"), "--extra 'nope': no such extra"),
        (PYPROJECT, ("base", "--extra", "fast"), "--extra and --all-extras need a pyproject"),
        (
            PYPROJECT + 'loop-a = [{include-group = "loop-b"}]\n'
            'loop-b = [{include-group = "loop-a"}]\n',
            ("--group", "loop-a"),
            "pyproject.toml: [dependency-groups]: Cyclic",
        ),
        (PYPROJECT, ("--group", "missing"), "Dependency group 'missing' not found"),
        (
            PYPROJECT.replace('"base"', '"base >>> 1"'),
            ("-r", "pyproject.toml"),
            "pyproject.toml:project.dependencies[0]: malformed requirement",
        ),
        ("[tool.x]\n", ("-r", "pyproject.toml"), "pyproject.toml: no [project] table"),
        (PYPROJECT, ("sub/pyproject.toml",), "sub/pyproject.toml: cannot read: No such file"),
        ("[project\n", ("-r", "pyproject.toml"), "pyproject.toml: (document): not valid TOML"),
        (PYPROJECT, ("--group", "other.toml:lint"), "the path must name a pyproject.toml"),
    ],
    ids=[
        "dynamic",
        "unknown-extra",
        "extra-without-pyproject",
        "group-cycle",
        "missing-group",
        "malformed",
        "no-project",
        "missing-file",
        "bad-toml",
        "group-path",
    ],
)
def test_bad_inputs_are_one_line_errors(
    index: IndexServer, run_cli: RunCli, tmp_path: Path, case: tuple[str, tuple[str, ...], str]
) -> None:
    text, args, message = case
    _write(tmp_path, text)
    out = _plan(run_cli, index, *args)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "plan.json").exists()
