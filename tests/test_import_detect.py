"""``import`` tells formats apart by content, and a file full of errors gives a short message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.utils import NormalizedName

from fetchplan.errors import FieldProblem, FileFormatError
from fetchplan.formats import FORMATS, Format, detect_format, export_plan
from fetchplan.schemas.plan import Artifact, IndexRef, Inputs, Plan, Target, write_plan
from tests.conftest import RunCli

SHA = "c" * 64
TARGET = Target(
    name="linux",
    markers={
        "implementation_name": "cpython",
        "platform_machine": "x86_64",
        "platform_system": "Linux",
        "python_full_version": "3.12.3",
        "python_version": "3.12",
        "sys_platform": "linux",
    },
    tags=("cp312-cp312-manylinux_2_17_x86_64", "py3-none-any"),
)
PLAN = Plan(
    created="2026-01-01T00:00:00Z",
    inputs=Inputs(requirements=("alpha",)),
    targets=(TARGET,),
    indexes=(IndexRef(url="https://index.example.org/simple/"),),
    destination="wheels",
    artifacts=(
        Artifact(
            name=NormalizedName("alpha"),
            version="1.0",
            kind="wheel",
            filename="alpha-1.0-py3-none-any.whl",
            url="https://files.example.org/alpha-1.0-py3-none-any.whl",
            index="https://index.example.org/simple/",
            hashes={"sha256": SHA},
            hash_source="index",
            size=1234,
            requested=True,
            destination="alpha-1.0-py3-none-any.whl",
        ),
    ),
)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("filename", ["exported.data", "pylock.toml", "report.json", "req.txt"])
def test_content_decides_whatever_the_name(fmt: Format, filename: str) -> None:
    text = export_plan(PLAN, fmt)
    assert detect_format(filename, text) == fmt


@pytest.mark.parametrize(
    ("filename", "text", "fmt"),
    [
        ("notes", "# only a comment\n\n", "requirements"),
        ("empty.txt", "", "requirements"),
        ("broken.json", '{"version": "1", "install": [', "pip-report"),
        ("broken.toml", "lock-version = \n", "pylock"),
        ("list.json", "[1, 2]", "pip-report"),
        ("anything", '{"install": []}', "pip-report"),
        ("pyproject.txt", '[project]\nname = "x"\n', "pylock"),
        ("reqs", "alpha==1.0 --hash=sha256:" + SHA + "\n", "requirements"),
    ],
)
def test_undecided_content(filename: str, text: str, fmt: str) -> None:
    assert detect_format(filename, text) == fmt


def test_problem_list_is_capped() -> None:
    problems = [FieldProblem(f"line {i}", "bad") for i in range(1, 1001)]
    message = str(FileFormatError("f.txt", problems))
    lines = message.splitlines()
    assert lines[0] == "f.txt: 1000 problems"
    assert lines[1:11] == [f"f.txt: line {i}: bad" for i in range(1, 11)]
    assert lines[11:] == ["f.txt: (and 990 more)"]
    exactly = str(FileFormatError("f.txt", problems[:10])).splitlines()
    assert len(exactly) == 11 and "more" not in exactly[-1]


def test_cli_imports_each_format_under_an_unhelpful_name(tmp_path: Path, run_cli: RunCli) -> None:
    plan_path = tmp_path / "plan.json"
    write_plan(plan_path, PLAN)
    for fmt in FORMATS:
        exported = tmp_path / f"{fmt}.data"
        out = run_cli("export", str(plan_path), "--format", fmt, "-o", str(exported))
        assert out.returncode == 0, out.stderr
        back = tmp_path / f"back-{fmt}.json"
        result = run_cli("import", str(exported), "-o", str(back))
        assert result.returncode == 0, (fmt, result.stderr)
        artifacts = json.loads(back.read_text())["artifacts"]
        assert [(a["url"], a["hashes"], a["size"]) for a in artifacts] == [
            (PLAN.artifacts[0].url, {"sha256": SHA}, 1234)
        ], fmt


def test_cli_garbage_gives_a_short_error(tmp_path: Path, run_cli: RunCli) -> None:
    garbage = tmp_path / "mystery.bin"
    garbage.write_text("".join(f"not a requirement {i} !!\n" for i in range(1000)))
    back = tmp_path / "back.json"
    result = run_cli("import", str(garbage), "-o", str(back))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"fetchplan: error: {garbage}: 1000 problems"
    assert len(lines) == 12 and lines[-1] == f"{garbage}: (and 990 more)"
    assert not back.exists()
