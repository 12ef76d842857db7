"""Documents built to exhaust a reader: YAML alias bombs, nesting 100,000 deep, huge integers.

Every command that reads a file (plan, manifest, policy, timings, lock files, requirement
imports) answers each with one line naming the file, quickly and in bounded memory.
"""

from __future__ import annotations

import resource
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.support.faults import PlanFile, write_plan

# 9 levels of 9 aliases: 9**9 (387 million) strings once expanded, from 324 bytes.
_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)
ALIAS_BOMB = 'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n' + _BOMB
DEEP = 100_000


def _deep_json() -> str:
    return "[" * DEEP + "]" * DEEP


def _deep_toml() -> str:
    return "a = " + "[" * DEEP + "]" * DEEP + "\n"


def _dotted_toml() -> str:
    # Not recursive for the parser, but a table 100,000 deep for whatever walks it next.
    return "[" + ".".join(["k"] * DEEP) + "]\nx = 1\n"


HUGE = "1" + "0" * 5000

# (file name, contents): one of each kind of trouble for each syntax.
DOCUMENTS: dict[str, Callable[[], str]] = {
    "bomb.yaml": lambda: ALIAS_BOMB,
    "deep.yaml": _deep_json,
    "int.yaml": lambda: f"format: {HUGE}\n",
    "deep.json": _deep_json,
    "int.json": lambda: '{"format": ' + HUGE + "}",
    "deep.toml": _deep_toml,
    "dotted.toml": _dotted_toml,
    "int.toml": lambda: f"lock-version = {HUGE}\n",
}


def _limited(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _assert_one_line(done: subprocess.CompletedProcess[str], name: str) -> None:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith(f"fetchplan: error: {name}"), lines[0]


PLAN_DOCUMENTS = [n for n in DOCUMENTS if not n.endswith(".toml")]


@pytest.mark.parametrize("name", PLAN_DOCUMENTS)
def test_show_refuses_each_in_one_line(name: str, tmp_path: Path, run_cli: RunCli) -> None:
    (tmp_path / name).write_text(DOCUMENTS[name]())
    _assert_one_line(run_cli("show", name), name)


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (("fetch",), "bomb.yaml"),
        (("audit",), "deep.json"),
        (("export", "--format", "requirements"), "int.yaml"),
        (("diff", "{file}"), "int.json"),
        (("fetch",), "deep.yaml"),
    ],
    ids=lambda c: c[0] if isinstance(c, tuple) else c,
)
def test_every_plan_reader_refuses_in_one_line(
    command: tuple[str, ...], name: str, tmp_path: Path, run_cli: RunCli
) -> None:
    (tmp_path / name).write_text(DOCUMENTS[name]())
    args = [command[0], name, *(a.replace("{file}", name) for a in command[1:])]
    _assert_one_line(run_cli(*args), name)


# YAML is no import format: such a file is read as requirements, whose reader lists its lines.
@pytest.mark.parametrize("name", [n for n in DOCUMENTS if not n.endswith(".yaml")])
def test_import_refuses_in_one_line(name: str, tmp_path: Path, run_cli: RunCli) -> None:
    (tmp_path / name).write_text(DOCUMENTS[name]())
    done = run_cli("import", name, "-o", "plan.json")
    _assert_one_line(done, name)
    assert not (tmp_path / "plan.json").exists()


@pytest.mark.parametrize("name", ["bomb.yaml", "deep.json", "int.json"])
def test_other_readers_refuse_in_one_line(name: str, tmp_path: Path, run_cli: RunCli) -> None:
    (tmp_path / name).write_text(DOCUMENTS[name]())
    write_plan(tmp_path / "plan.json", [PlanFile("http://127.0.0.1:1/a.whl", b"a", "a.whl")])
    for args in (
        ("audit", "plan.json", "--policy", name),
        ("report", name, "-o", "out.svg"),
        ("install", name, "--venv", "env"),
    ):
        done = run_cli(*args)
        _assert_one_line(done, name)
    # verify reports every file it checks, then how many problems it found.
    done = run_cli("verify", name)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"fetchplan: {name}: (document): "), done.stderr


def test_alias_bomb_is_refused_in_bounded_memory(
    tmp_path: Path, fetchplan_cmd: list[str], cli_env: dict[str, str]
) -> None:
    (tmp_path / "bomb.yaml").write_text(ALIAS_BOMB)
    done = subprocess.run(
        [*fetchplan_cmd, "show", "bomb.yaml"],
        cwd=tmp_path,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limited(1 << 30),
        check=False,
    )
    _assert_one_line(done, "bomb.yaml")
    assert "aliases" in done.stderr


TOML_DOCUMENTS = [n for n in DOCUMENTS if n.endswith(".toml")]


@pytest.mark.parametrize("name", TOML_DOCUMENTS)
def test_pyproject_and_lock_inputs_refuse_in_one_line(
    name: str, tmp_path: Path, run_cli: RunCli
) -> None:
    # pyproject.toml as -r, as an argument and for --group, and a pylock.toml for --from: each
    # a TOML reader of its own before, which let tomllib's errors through as tracebacks.
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(DOCUMENTS[name]())
    (tmp_path / "pylock.toml").write_text(DOCUMENTS[name]())
    offline = ("--isolated", "--no-index", "-f", str(tmp_path), "-o", "plan.json")
    pyproject = str(project / "pyproject.toml")
    for args, shown in (
        (("-r", pyproject), pyproject),
        ((pyproject,), pyproject),
        (("--group", f"{pyproject}:dev"), pyproject),
        (("lib", "--from", "pylock.toml"), "pylock.toml"),
    ):
        done = run_cli("plan", *args, *offline)
        _assert_one_line(done, shown)
        assert done.returncode == 2
        assert not (tmp_path / "plan.json").exists()


@pytest.mark.parametrize("name", ["bomb.yaml", "deep.json", "int.json"])
def test_install_of_a_bundle_with_a_hostile_bundle_json_is_one_line(
    name: str, tmp_path: Path, run_cli: RunCli
) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text(DOCUMENTS[name]())
    done = run_cli("install", "bundle", "--venv", "env")
    _assert_one_line(done, "bundle: failed verification: ")
    assert "bundle.json" in done.stderr
    assert not (tmp_path / "env").exists()
