"""``fetchplan run`` end to end, and ``fetch --policy``: real servers, real venvs, real pip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fetchplan.schemas.manifest import load_manifest
from fetchplan.schemas.plan import load_plan
from tests.conftest import MakeIndexServer, MakeNginxServer, RunCli
from tests.support.hostile import snapshot
from tests.support.servers import IndexRequestHandler
from tests.support.wheels import Dist

# A graph four levels deep, with an extra, a marker that excludes one branch, and a console
# script, so the plan, the fetch and the install each have something to get wrong.
GRAPH = [
    Dist("app", "1.0", requires=["web[fast]>=2", "util<2"], console_scripts={"app": "app:main"}),
    Dist("app", "0.9", requires=["util<2"]),
    Dist("web", "2.1", requires=["util>=1.1"], extras={"fast": ["speed>=1"]}),
    Dist("web", "1.0"),
    Dist("speed", "1.2", requires=["core==3.0", 'never ; python_version < "3.0"']),
    Dist("util", "1.5", requires=["core>=3"]),
    Dist("util", "2.0", requires=["core>=3"]),
    Dist("core", "3.0", padding=200_000),
    Dist("core", "3.1", padding=200_000),
]
EXPECTED = {"app": "1.0", "web": "2.1", "speed": "1.2", "util": "1.5", "core": "3.0"}


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_run_multi_level_graph_into_fresh_venv(
    nginx_server: MakeNginxServer,
    tmp_path: Path,
    run_cli: RunCli,
) -> None:
    server = nginx_server(GRAPH)
    argv = [
        "run", "app", "--index-url", server.index_url, "--venv", "venv",
        "-o", "out/plan.json", "--timings", "out/timings.json", "--progress", "plain",
    ]  # fmt: skip
    done = run_cli(*argv)
    assert done.returncode == 0, done.stderr

    plan, _ = load_plan(tmp_path / "out" / "plan.json")
    assert {a.name: a.version for a in plan.artifacts} == EXPECTED
    manifest = load_manifest(tmp_path / "out" / "wheels" / "manifest.json")
    assert {a.name: a.version for a in manifest.artifacts} == EXPECTED
    assert (tmp_path / "out" / "timings.fetch.json").is_file()

    python = tmp_path / "venv" / "bin" / "python"
    listed = _pip(python, "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert {p["name"]: p["version"] for p in json.loads(listed.stdout)} == EXPECTED
    checked = _pip(python, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    script = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "app")], capture_output=True, text=True, check=True
    )
    assert script.stdout.strip() == "app 1.0"

    # A second run fetches nothing and changes nothing in the environment.
    before = snapshot(tmp_path / "venv")
    server.reset_counters()
    again = run_cli(*argv)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1].startswith("Audited 5 packages in ")
    assert snapshot(tmp_path / "venv") == before
    assert [r.path for r in server.requests("/files/") if r.path.endswith(".whl")] == []


def test_run_into_another_interpreter_plans_for_its_micro_release(
    index_server: MakeIndexServer, tmp_path: Path, run_cli: RunCli
) -> None:
    # Requires-Python names this interpreter's micro release: planning for "3.Y" (3.Y.0)
    # instead of the interpreter's own 3.Y.Z would reject the only version there is.
    here = ".".join(str(p) for p in sys.version_info[:3])
    server = index_server([Dist("exact", "1.0", requires_python=f">={here}")])
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    done = run_cli(
        "run", "exact", "--index-url", server.index_url, "--python", python,
        "-o", "plan.json", "--progress", "none",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    plan, _ = load_plan(tmp_path / "plan.json")
    assert [(a.name, a.version) for a in plan.artifacts] == [("exact", "1.0")]
    listed = _pip(python, "list", "--format", "json")
    assert {p["name"]: p["version"] for p in json.loads(listed.stdout)} == {"exact": "1.0"}


def test_run_installs_nothing_when_a_download_fails(
    index_server: MakeIndexServer,
    tmp_path: Path,
    run_cli: RunCli,
    cli_env: dict[str, str],
) -> None:
    server = index_server(GRAPH)

    def broken_core(handler: IndexRequestHandler) -> bool:
        if handler.url_path == "/files/core-3.0-py3-none-any.whl":
            handler.respond(404, b"gone")
            return True
        return False

    server.set_handler_hook(broken_core)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    before = snapshot(venv)
    done = run_cli(
        "run", "app", "--index-url", server.index_url, "--venv", venv, "-o", "plan.json",
        "--progress", "none", env={**cli_env, "FETCHPLAN_RETRY_BASE": "0.01"},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "core-3.0-py3-none-any.whl" in done.stderr
    assert "nothing installed" in done.stderr
    assert snapshot(venv) == before
    # What was verified stays for the next run.
    kept = load_manifest(tmp_path / "wheels" / "manifest.json")
    assert {a.name for a in kept.artifacts} == set(EXPECTED) - {"core"}


def test_fetch_and_run_refuse_a_plan_that_breaks_the_policy(
    index_server: MakeIndexServer,
    tmp_path: Path,
    run_cli: RunCli,
) -> None:
    server = index_server(GRAPH)
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\ndeny: [speed]\nmax_file_size: 100000\n")
    planned = run_cli("plan", "app", "--index-url", server.index_url, "-o", "plan.json")
    assert planned.returncode == 0, planned.stderr
    server.reset_counters()
    refused = run_cli("fetch", "plan.json", "--policy", policy)
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert any("speed" in line for line in lines if line.startswith("fetchplan: policy:"))
    assert any("core-3.0" in line for line in lines if line.startswith("fetchplan: policy:"))
    assert lines[-1].startswith("fetchplan: error: plan.json: policy violated")
    assert server.requests("/files/") == []
    assert not (tmp_path / "wheels").exists()

    venv = tmp_path / "venv"
    run = run_cli("run", "app", "--index-url", server.index_url, "--venv", venv, "--policy", policy)
    assert run.returncode == 1
    assert "policy violated" in run.stderr
    # Planning read metadata files only; no wheel was fetched.
    assert [r.path for r in server.requests("/files/") if r.path.endswith(".whl")] == []


def test_run_offline_from_a_directory_makes_no_request(
    index_server: MakeIndexServer,
    tmp_path: Path,
    run_cli: RunCli,
) -> None:
    server = index_server(GRAPH)
    wheels = server.root / "files"
    argv = ["run", "app", "--offline", "--venv", "venv", "--progress", "none"]
    # With an index on the network, --offline refuses before any request.
    refused = run_cli(*argv, "--index-url", server.index_url)
    assert refused.returncode != 0
    assert "--offline" in refused.stderr
    done = run_cli(*argv, "--no-index", "--find-links", wheels)
    assert done.returncode == 0, done.stderr
    assert server.requests() == []
    listed = _pip(tmp_path / "venv" / "bin" / "python", "list", "--format", "json")
    assert {p["name"]: p["version"] for p in json.loads(listed.stdout)} == EXPECTED
