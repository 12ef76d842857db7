"""``fetchplan plan`` and ``fetchplan show`` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fetchplan.schemas import load_document
from fetchplan.schemas.plan import load_plan
from tests.conftest import MakeIndex, MakeIndexServer, RunCli
from tests.support.wheels import Dist


@pytest.fixture
def simple(make_index: MakeIndex) -> str:
    root = make_index(
        [
            Dist("app", "1.0", requires=["lib>=1"]),
            Dist("lib", "1.0", padding=5000),
            Dist("lib", "2.0", padding=5000),
        ]
    )
    return (root / "simple").as_uri()


@pytest.mark.parametrize("command", ["plan", "show"])
def test_help(command: str, run_cli: RunCli, tmp_path: Path) -> None:
    out = run_cli(command, "--help")
    assert out.returncode == 0
    assert f"usage: fetchplan {command}" in out.stdout
    for option in ("-v", "--quiet", "--log"):
        assert option in out.stdout


def test_plan_then_show(simple: str, run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "nested.txt").write_text("lib<2  # keep the old one\n")
    (tmp_path / "requirements.txt").write_text(
        f"--index-url {simple}\n# the application\napp \\\n  >=1.0\n-r nested.txt\n"
    )
    out = run_cli(
        "plan",
        "-r",
        "requirements.txt",
        "-o",
        "out/plan.yaml",
        "--dest",
        "out/wheels",
        "--timings",
        "out/timings.json",
        "--isolated",
        "--no-cache",
    )
    assert out.returncode == 0, out.stderr
    assert "wrote out/plan.yaml: 2 artifacts, 2 to fetch" in out.stdout
    plan, document = load_plan(tmp_path / "out" / "plan.yaml")
    assert not (tmp_path / "out" / "plan.yaml").read_text().lstrip().startswith("{")
    assert plan.destination == "wheels"
    assert {a.name: a.version for a in plan.artifacts} == {"app": "1.0", "lib": "1.0"}
    assert document["inputs"]["requirements"] == ["app>=1.0", "lib<2"]
    timings = load_document(tmp_path / "out" / "timings.json", "plan-timings")
    assert timings["resolver"]["rounds"] > 0
    phases = {event["phase"] for event in timings["events"]}
    assert phases == {"index", "metadata", "resolve"}
    assert all(event["lane"] and event["label"] for event in timings["events"])

    shown = run_cli("show", "out/plan.yaml")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "SIZE", "HOST", "STATUS"]
    assert lines[1].split()[:2] == ["app", "1.0"] and lines[1].split()[-1] == "fetch"
    assert lines[2].split()[:2] == ["lib", "1.0"] and "local" in lines[2]
    total = sum(a.size or 0 for a in plan.artifacts)
    assert "2 artifacts: 2 to download" in shown.stdout
    assert f"{total} bytes" in shown.stdout
    assert "0 already satisfied" in shown.stdout


def test_show_rejects_a_bad_plan_with_its_field(
    simple: str, run_cli: RunCli, tmp_path: Path
) -> None:
    out = run_cli("plan", "app", "-i", simple, "--isolated", "--no-cache")
    assert out.returncode == 0, out.stderr
    document = json.loads((tmp_path / "plan.json").read_text())
    assert document["destination"] == "wheels"
    document["artifacts"][1]["hashes"]["sha256"] = "not-hex"
    (tmp_path / "bad.json").write_text(json.dumps(document))
    shown = run_cli("show", "bad.json")
    assert shown.returncode == 2
    assert "bad.json: artifacts[1].hashes.sha256:" in shown.stderr
    assert "Traceback" not in shown.stderr


ERROR_CASES = [
    (["-r", "req.txt"], "app\nnot a valid ==requirement\n", 2, "req.txt:2: malformed requirement"),
    (["ghost"], None, 1, "unknown project 'ghost'"),
    (["app>=5"], None, 1, "no version of app satisfies app>=5"),
    (["app", "--python-version", "nope"], None, 2, "--python-version 'nope'"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=["requirement", "unknown", "no-match", "target"])
def test_errors_are_one_line(
    simple: str,
    run_cli: RunCli,
    tmp_path: Path,
    case: tuple[list[str], str | None, int, str],
) -> None:
    args, requirements, code, message = case
    if requirements is not None:
        (tmp_path / "req.txt").write_text(requirements)
    out = run_cli("plan", *args, "-i", simple, "--isolated", "--no-cache")
    assert out.returncode == code, out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("fetchplan: error: ") and message in out.stderr
    assert not (tmp_path / "plan.json").exists()


def test_unreachable_index_fails_after_retries(run_cli: RunCli, tmp_path: Path) -> None:
    out = run_cli(
        "plan",
        "app",
        "-i",
        "http://127.0.0.1:9/simple/",
        "--isolated",
        "--retries",
        "1",
        "--timeout",
        "2",
    )
    assert out.returncode == 1
    assert out.stderr.startswith("fetchplan: error: index http://127.0.0.1:9/simple/app/ failed")
    assert out.stderr.count("\n") == 1


def test_pip_environment_index_and_credentials_kept_out_of_log(
    make_index: MakeIndex,
    index_server: MakeIndexServer,
    run_cli: RunCli,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    server = index_server(make_index([Dist("app", "1.0")]))
    server.options.auth = ("bob", "pa55-word")
    env = {
        **cli_env,
        "PIP_INDEX_URL": server.index_url.replace("http://", "http://bob:pa55-word@"),
    }
    out = run_cli("-vv", "plan", "app", "--log", "plan.log", "--no-cache", env=env)
    assert out.returncode == 0, out.stderr
    plan, _document = load_plan(tmp_path / "plan.json")
    assert [i.url for i in plan.indexes] == [server.index_url]
    log_text = (tmp_path / "plan.log").read_text()
    assert server.index_url in log_text or "127.0.0.1" in log_text
    for text in (log_text, out.stderr, (tmp_path / "plan.json").read_text()):
        assert "pa55-word" not in text
    assert all(r.status == 200 for r in server.requests())


def test_wrong_credentials_name_the_index(
    make_index: MakeIndex,
    index_server: MakeIndexServer,
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    server = index_server(make_index([Dist("app", "1.0")]))
    server.options.auth = ("bob", "right")
    url = server.index_url.replace("http://", "http://bob:wrong@")
    out = run_cli("plan", "app", "-i", url, "--isolated")
    assert out.returncode == 1
    assert "wrong" not in out.stderr
    assert f"index {server.index_url}app/ answered HTTP 401" in out.stderr
    assert "credentials" in out.stderr
