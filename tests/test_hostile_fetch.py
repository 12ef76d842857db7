"""``fetch`` against servers that cut answers off, send no validators, or send endless bodies."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from tests.conftest import RunCli
from tests.support.faults import Fault, FaultServer, PlanFile, write_plan

SIZE = 600_000
CUT = 100_000
NAME = "demo-1.0-py3-none-any.whl"
PATH = f"/files/{NAME}"


def _env(cli_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        **cli_env,
        "FETCHPLAN_RETRY_BASE": "0.01",
        "FETCHPLAN_RETRY_MAX": "0.05",
        "FETCHPLAN_STALL_MIN_BYTES": "1024",
        **extra,
    }


def _plan(tmp_path: Path, server: FaultServer, data: bytes, fault: Fault, **kw: object) -> None:
    url = server.add(PATH, data, fault)
    write_plan(tmp_path / "plan.json", [PlanFile(url, data, NAME, **kw)])  # type: ignore[arg-type]


def _timing(tmp_path: Path) -> dict[str, object]:
    artifact: dict[str, object]
    [artifact] = json.loads((tmp_path / "timings.json").read_text())["artifacts"]
    return artifact


def test_a_zero_byte_artifact_is_fetched(
    server: FaultServer, tmp_path: Path, run_cli: RunCli
) -> None:
    _plan(tmp_path, server, b"", Fault())
    done = run_cli("fetch", "plan.json")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "wheels" / NAME).read_bytes() == b""
    again = run_cli("fetch", "plan.json")
    assert again.returncode == 0, again.stderr
    assert "1 existing" in again.stdout


def test_tries_that_restart_from_zero_use_up_the_retries(
    server: FaultServer, tmp_path: Path, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    # Every answer is cut off, Range is ignored, no validator: after the first, no try gets
    # further, so each of the next three uses up one of --retries.
    data = os.urandom(SIZE)
    _plan(tmp_path, server, data, Fault(close_after=CUT, no_validators=True, ignore_range=True))
    done = run_cli(
        "fetch", "plan.json", "--retries", "3", "--timings", "timings.json", env=_env(cli_env)
    )
    assert done.returncode == 1
    assert "gave up after 4 tries" in done.stderr
    assert len(server.requests_for(PATH)) == 4
    assert server.bytes_sent(PATH) <= 4 * CUT
    assert not (tmp_path / "wheels" / NAME).exists()


def test_cut_off_answers_without_validators_resume_by_range(
    server: FaultServer, tmp_path: Path, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    data = os.urandom(SIZE)
    _plan(tmp_path, server, data, Fault(close_after=CUT, no_validators=True))
    done = run_cli("fetch", "plan.json", "--retries", "2", env=_env(cli_env))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "wheels" / NAME).read_bytes() == data
    requests = server.requests_for(PATH)
    assert len(requests) == SIZE // CUT
    assert all("If-Range" not in r.headers for r in requests)
    assert server.bytes_sent(PATH) == SIZE  # never a byte twice


def test_a_partial_without_validator_is_resumed_on_the_next_run(
    server: FaultServer, tmp_path: Path, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    data = os.urandom(SIZE)
    _plan(tmp_path, server, data, Fault(close_after=CUT, no_validators=True, ignore_range=True))
    first = run_cli("fetch", "plan.json", "--retries", "1", env=_env(cli_env))
    assert first.returncode == 1
    server.faults[PATH] = Fault(no_validators=True)
    server.reset_counters()
    second = run_cli("fetch", "plan.json", "--timings", "timings.json", env=_env(cli_env))
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "wheels" / NAME).read_bytes() == data
    [request] = server.requests_for(PATH)
    assert request.headers["Range"] == f"bytes={CUT}-"
    assert server.bytes_sent(PATH) == SIZE - CUT
    assert "100.0 kB resumed from an earlier run" in second.stdout
    assert _timing(tmp_path)["source"] == "resumed"


def test_a_resumed_partial_that_does_not_match_starts_once_from_zero(
    server: FaultServer, tmp_path: Path, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    data = os.urandom(SIZE)
    wrong = os.urandom(SIZE)  # what a server sent before it was fixed
    _plan(tmp_path, server, data, Fault())
    server.faults[PATH] = Fault(close_after=CUT, no_validators=True, body=wrong, ignore_range=True)
    first = run_cli("fetch", "plan.json", "--retries", "1", env=_env(cli_env))
    assert first.returncode == 1
    server.faults[PATH] = Fault(no_validators=True)
    server.reset_counters()
    second = run_cli("fetch", "plan.json", env=_env(cli_env))
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "wheels" / NAME).read_bytes() == data
    resumed, fresh = server.requests_for(PATH)
    assert resumed.headers["Range"] == f"bytes={CUT}-"
    assert "Range" not in fresh.headers
    assert "resumed from an earlier run" not in second.stdout


def test_an_endless_gzip_body_of_an_unsized_file_is_cut_at_the_stated_maximum(
    server: FaultServer, tmp_path: Path, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    data = bytes(20_000_000)  # 20 MB of zeros: 20 kB gzip-encoded
    assert len(gzip.compress(data)) < 100_000
    url = server.add(PATH, data, Fault(gzip=True))
    write_plan(tmp_path / "plan.json", [PlanFile(url, data, NAME, size=None)])
    done = run_cli("fetch", "plan.json", env=_env(cli_env, FETCHPLAN_MAX_UNSIZED_BYTES="1000000"))
    assert done.returncode == 1
    assert "larger than 1000000 bytes" in done.stderr
    assert not (tmp_path / "wheels" / NAME).exists()
    partial = tmp_path / "wheels" / ".fetchplan" / "partial"
    assert sum(p.stat().st_size for p in partial.iterdir()) == 0
