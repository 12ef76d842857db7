"""``fetchplan fetch`` and ``fetchplan manifest merge`` as a user runs them: in a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fetchplan.schemas import load_document
from fetchplan.schemas.manifest import load_manifest
from tests.support.faults import Fault, FaultServer, PlanFile, write_plan
from tests.support.processes import Processes

FAST_ENV = {
    "FETCHPLAN_RETRY_BASE": "0.01",
    "FETCHPLAN_RETRY_MAX": "0.05",
    "FETCHPLAN_STALL_WINDOW": "2",
    "FETCHPLAN_PROGRESS_INTERVAL": "0.1",
}


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return {**cli_env, **FAST_ENV}


def _files(
    server: FaultServer, count: int, size: int, fault: Fault | None = None
) -> list[PlanFile]:
    files = []
    for i in range(count):
        data = os.urandom(size + i)
        path = f"/files/pkg{i}-1.0-py3-none-any.whl"
        url = server.add(path, data, None if fault is None else Fault(**vars(fault)))
        files.append(PlanFile(url, data, f"pkg{i}-1.0-py3-none-any.whl"))
    return files


def _fetch(
    cmd: list[str], env: dict[str, str], *args: str | Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cmd, "fetch", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _start(
    processes: Processes, cmd: list[str], env: dict[str, str], *args: str | Path
) -> subprocess.Popen[str]:
    return processes.start([*cmd, "fetch", *args], env=env)


def _assert_all_verified(dest: Path, files: list[PlanFile]) -> None:
    manifest = load_manifest(dest / "manifest.json")
    listed = {a.path: a.sha256 for a in manifest.artifacts}
    for f in files:
        assert (dest / f.destination).read_bytes() == f.content
        assert listed[f.destination] == hashlib.sha256(f.content).hexdigest()


def test_executor_never_imports_the_planner(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = os.urandom(5000)
    (tmp_path / "src.whl").write_bytes(data)
    plan = write_plan(
        tmp_path / "plan.json", [PlanFile((tmp_path / "src.whl").as_uri(), data, "x.whl")]
    )
    # Import every executor module, then run a whole fetch (of a file:// plan) in-process.
    code = (
        "import argparse, importlib, pkgutil, sys\n"
        "import fetchplan.executor, fetchplan.commands.fetch as fetch\n"
        "import fetchplan.commands.manifest\n"
        "for m in pkgutil.iter_modules(fetchplan.executor.__path__):\n"
        "    importlib.import_module('fetchplan.executor.' + m.name)\n"
        "parser = argparse.ArgumentParser()\n"
        "fetch.register(parser.add_subparsers(), argparse.ArgumentParser(add_help=False))\n"
        "args = parser.parse_args(['fetch', sys.argv[1], '--isolated', '--no-cache'])\n"
        "args.quiet = 1\n"
        "code = args.func(args)\n"
        "print(sorted(m for m in sys.modules if m.startswith('fetchplan.planner')))\n"
        "sys.exit(code)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(plan)],
        env=cli_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "[]"
    assert (tmp_path / "wheels" / "x.whl").read_bytes() == data


def test_bad_plan_rejected_with_every_field_and_nothing_fetched(
    server: FaultServer, tmp_path: Path, fetchplan_cmd: list[str], env: dict[str, str]
) -> None:
    files = _files(server, 4, 1000)
    plan = write_plan(tmp_path / "plan.json", files)
    document = json.loads(plan.read_text())
    document["artifacts"][0]["destination"] = "../escape.whl"
    document["artifacts"][1]["hashes"] = {"md5": "0" * 32}
    document["artifacts"][2]["destination"] = "PKG3-1.0-py3-none-any.WHL"
    document["artifacts"][3]["url"] = "http://mirror.invalid/files/pkg3.whl"
    plan.write_text(json.dumps(document))
    out = _fetch(fetchplan_cmd, env, plan, "--isolated")
    assert out.returncode == 2, out.stderr
    for field in (
        "artifacts[0].destination",
        "artifacts[1].hashes.sha256",
        "artifacts[3].destination",
        "artifacts[3].url",
    ):
        assert f"{plan}: {field}:" in out.stderr
    assert server.requests == []
    assert not (tmp_path / "wheels").exists()
    assert not (tmp_path / "escape.whl").exists()


def test_failures_exit_1_and_keep_verified_files(
    server: FaultServer, tmp_path: Path, fetchplan_cmd: list[str], env: dict[str, str]
) -> None:
    files = _files(server, 3, 20_000)
    server.fault("/files/pkg1-1.0-py3-none-any.whl").status = 404
    plan = write_plan(tmp_path / "plan.json", files)
    out = _fetch(fetchplan_cmd, env, plan, "--isolated", "-q")
    assert out.returncode == 1
    assert "failed: pkg1-1.0-py3-none-any.whl: HTTP 404" in out.stderr
    assert out.stdout == ""
    manifest = load_manifest(tmp_path / "wheels" / "manifest.json")
    assert [a.path for a in manifest.artifacts] == [files[0].destination, files[2].destination]
    assert not (tmp_path / "wheels" / files[1].destination).exists()


def test_two_executors_on_one_destination(
    server: FaultServer,
    tmp_path: Path,
    fetchplan_cmd: list[str],
    env: dict[str, str],
    processes: Processes,
) -> None:
    files = _files(server, 4, 300_000, Fault(rate=200_000))
    plan = write_plan(tmp_path / "plan.json", files)
    first = _start(processes, fetchplan_cmd, env, plan, "--isolated")
    second = _start(processes, fetchplan_cmd, env, plan, "--isolated")
    outs = [p.communicate(timeout=60) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    assert sum("waiting for another fetchplan (pid" in err for _, err in outs) == 1, outs
    # Each file crossed the wire once; the later run found them all in place.
    assert server.bytes_sent() == sum(len(f.content) for f in files)
    assert sum("4 existing" in out for out, _ in outs) == 1
    _assert_all_verified(tmp_path / "wheels", files)


def test_no_wait_fails_at_once_while_locked(
    server: FaultServer,
    tmp_path: Path,
    fetchplan_cmd: list[str],
    env: dict[str, str],
    processes: Processes,
) -> None:
    # The first fetch's bodies wait for the gate, so it holds the lock until the second has
    # answered, however slowly either process starts.
    gate = threading.Event()
    files = _files(server, 2, 200_000, Fault(gate=gate))
    plan = write_plan(tmp_path / "plan.json", files)
    first = _start(processes, fetchplan_cmd, env, plan, "--isolated")
    try:
        owner = tmp_path / "wheels" / ".fetchplan" / "owner.json"
        deadline = time.monotonic() + 30
        while not owner.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        out = _fetch(fetchplan_cmd, env, plan, "--isolated", "--no-wait")
    finally:
        gate.set()
    assert out.returncode == 75
    assert f"pid {first.pid}" in out.stderr
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    _assert_all_verified(tmp_path / "wheels", files)


def test_timings_log_and_no_credentials_anywhere(
    server: FaultServer, tmp_path: Path, fetchplan_cmd: list[str], env: dict[str, str]
) -> None:
    files = _files(server, 3, 50_000, Fault(require_auth=("bob", "hunter2-secret")))
    server.fault(files[0].url.split(str(server.port), 1)[1]).close_after = 20_000
    server.fault(files[0].url.split(str(server.port), 1)[1]).faulty_requests = 1
    plan = write_plan(tmp_path / "plan.json", files)
    timings = tmp_path / "timings.json"
    log = tmp_path / "fetch.log"
    index = f"http://bob:hunter2-secret@127.0.0.1:{server.port}/simple/"
    out = _fetch(
        fetchplan_cmd,
        env,
        plan,
        "--isolated",
        "--index-url",
        index,
        "--timings",
        timings,
        "--log",
        log,
        "-v",
    )
    assert out.returncode == 0, out.stderr
    assert "3 verified (2 downloaded, 1 resumed, 0 cache, 0 existing), 0 failed" in out.stdout
    document = load_document(timings, "fetch-timings")
    assert document["files"]["resumed"] == 1
    assert document["retries"] == 1
    assert list(document["hosts"]) == [f"127.0.0.1:{server.port}"]
    for record in document["artifacts"]:
        assert record["end"] >= record["start"] >= 0
        assert [p["name"] for p in record["phases"]][-1] == "verify"
        assert record["connections"]
    for written in (log, timings, tmp_path / "wheels" / "manifest.json"):
        text = written.read_text()
        assert text
        assert "hunter2" not in text
    assert "hunter2" not in out.stderr + out.stdout


def test_shards_share_a_log_and_merge(
    server: FaultServer,
    tmp_path: Path,
    fetchplan_cmd: list[str],
    env: dict[str, str],
    processes: Processes,
) -> None:
    files = _files(server, 5, 40_000)
    plan = write_plan(tmp_path / "plan.json", files)
    log = tmp_path / "shared.log"
    runs = [
        _start(
            processes, fetchplan_cmd, env, plan, "--isolated", "--shard", f"{i}/2",
            "--dest", tmp_path / f"d{i}", "--log", log, "-v",
        )
        for i in (1, 2)
    ]  # fmt: skip
    for run in runs:
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
    one = load_manifest(tmp_path / "d1" / "manifest.json")
    two = load_manifest(tmp_path / "d2" / "manifest.json")
    assert one.shard is not None and (one.shard.index, one.shard.count) == (1, 2)
    names_one = {a.path for a in one.artifacts}
    names_two = {a.path for a in two.artifacts}
    assert not names_one & names_two
    assert names_one | names_two == {f.destination for f in files}
    assert server.bytes_sent() == sum(len(f.content) for f in files)
    pids = {line.split()[2] for line in log.read_text().splitlines() if line[:4].isdigit()}
    assert len(pids) == 2

    merged_path = tmp_path / "all" / "manifest.json"
    partial = subprocess.run(
        [*fetchplan_cmd, "manifest", "merge", str(tmp_path / "d1" / "manifest.json"),
         "-o", str(merged_path)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert partial.returncode == 2
    assert "not in any manifest" in partial.stderr
    done = subprocess.run(
        [*fetchplan_cmd, "manifest", "merge", str(tmp_path / "d1" / "manifest.json"),
         str(tmp_path / "d2" / "manifest.json"), "-o", str(merged_path)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    merged = load_manifest(merged_path)
    assert merged.shard is None
    assert [a.path for a in merged.artifacts] == [
        f"../d{1 if f.destination in names_one else 2}/{f.destination}" for f in files
    ]
    for artifact in merged.artifacts:
        content = (merged_path.parent / artifact.path).read_bytes()
        assert hashlib.sha256(content).hexdigest() == artifact.sha256
    assert (tmp_path / "all" / "plan.json").is_file()


def test_interrupt_writes_manifest_and_rerun_finishes(
    server: FaultServer,
    tmp_path: Path,
    fetchplan_cmd: list[str],
    env: dict[str, str],
    processes: Processes,
) -> None:
    small = _files(server, 2, 10_000)
    big = PlanFile(
        server.add("/files/big.whl", data := os.urandom(600_000), Fault(rate=400_000)),
        data,
        "big.whl",
    )
    files = [*small, big]
    plan = write_plan(tmp_path / "plan.json", files)
    run = _start(processes, fetchplan_cmd, env, plan, "--isolated")
    part = tmp_path / "wheels" / ".fetchplan" / "partial" / "big.whl.part"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not part.exists() or part.stat().st_size < 100_000):
        time.sleep(0.02)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 130, err
    manifest = load_manifest(tmp_path / "wheels" / "manifest.json")
    assert {a.path for a in manifest.artifacts} == {f.destination for f in small}
    assert not (tmp_path / "wheels" / "big.whl").exists()
    kept = part.stat().st_size
    assert kept >= 100_000
    server.wait_idle()
    server.reset_counters()
    again = _fetch(fetchplan_cmd, env, plan, "--isolated")
    assert again.returncode == 0, again.stderr
    assert server.bytes_sent() == len(data) - kept
    _assert_all_verified(tmp_path / "wheels", files)


def test_plain_progress_lines_off_a_terminal(
    server: FaultServer, tmp_path: Path, fetchplan_cmd: list[str], env: dict[str, str]
) -> None:
    files = _files(server, 2, 100_000, Fault(rate=300_000))
    plan = write_plan(tmp_path / "plan.json", files)
    out = _fetch(fetchplan_cmd, env, plan, "--isolated", "--no-cache")
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines[0].startswith("fetchplan: fetching 2 files")
    assert any(" files, " in line and "/s" in line and "ETA" in line for line in lines[1:])
    assert "\x1b[" not in out.stderr
