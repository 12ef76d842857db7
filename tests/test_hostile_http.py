"""Servers that trickle their headers, send pages that decode to gigabytes, or ask to wait a day:
``plan`` and ``fetch`` end within their deadlines, in bounded memory, with one line."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import urllib3

from fetchplan._limits import MAX_PAGE_BYTES, RETRY_AFTER_CAP
from fetchplan.planner.http import HttpPolicy, retry_policy
from tests.conftest import RunCli
from tests.support.faults import Fault, FaultServer, PlanFile, write_plan

PAGE = b'<html><body><a href="/files/demo-1.0-py3-none-any.whl">demo-1.0-py3-none-any.whl</a>'


def _endless_gzip(decoded: int) -> bytes:
    """A gzip stream of ``decoded`` zero bytes, made without holding them."""
    encoder = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    parts = [encoder.compress(PAGE)]
    for _ in range(decoded // len(chunk)):
        parts.append(encoder.compress(chunk))
    parts.append(encoder.flush())
    return b"".join(parts)


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def test_plan_gives_up_on_trickled_headers_within_its_timeout(
    server: FaultServer, run_cli: RunCli
) -> None:
    # About 150 bytes of headers, one a second: two and a half minutes if let through.
    server.add("/simple/demo/", PAGE, Fault(header_drip=1.0, content_type="text/html"))
    started = time.monotonic()
    done = run_cli("plan", "demo", "-i", f"{server.url}/simple/", "--timeout", "2")
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    line = _one_line(done.stderr)
    assert "deadline" in line, line
    assert elapsed < 30, elapsed


def test_fetch_gives_up_on_trickled_headers_within_the_stall_timeout(
    server: FaultServer, tmp_path: Path, run_cli: RunCli
) -> None:
    data = b"x" * 1000
    url = server.add("/files/demo.whl", data, Fault(header_drip=1.0))
    write_plan(tmp_path / "plan.json", [PlanFile(url, data, "demo.whl")])
    started = time.monotonic()
    done = run_cli("fetch", "plan.json", "--stall-timeout", "2", "--retries", "1")
    elapsed = time.monotonic() - started
    assert done.returncode == 1
    assert "deadline" in done.stderr, done.stderr
    assert elapsed < 30, elapsed
    assert not (tmp_path / "wheels" / "demo.whl").exists()


def test_a_page_that_decodes_past_the_page_limit_is_refused(
    server: FaultServer, run_cli: RunCli
) -> None:
    body = _endless_gzip(MAX_PAGE_BYTES + (64 << 20))
    assert len(body) < 1_000_000
    fault = Fault(content_encoding="gzip", content_type="text/html")
    server.add("/simple/demo/", body, fault)
    done = run_cli("plan", "demo", "-i", f"{server.url}/simple/")
    assert done.returncode != 0
    line = _one_line(done.stderr)
    assert f"larger than {MAX_PAGE_BYTES} bytes (decoded)" in line, line
    assert "/simple/demo/" in line


def test_the_planner_caps_retry_after_as_the_executor_does() -> None:
    retry = retry_policy(HttpPolicy())
    asked = urllib3.HTTPResponse(status=503, headers={"Retry-After": "100000"})
    assert retry.get_retry_after(asked) == RETRY_AFTER_CAP
    assert retry.new(total=1).get_retry_after(asked) == RETRY_AFTER_CAP
    brief = urllib3.HTTPResponse(status=503, headers={"Retry-After": "2"})
    assert retry.get_retry_after(brief) == 2
