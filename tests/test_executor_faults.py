"""Every fault switch of the in-process server, one test each, through ``execute_plan``.

Each test asserts what the user gets (a verified file or a named failure, never a wrong file
under a final name) and, through the server's byte counter and request log, what the executor
really did on the wire.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
from dataclasses import replace
from email.utils import formatdate
from pathlib import Path

import pytest

from fetchplan.executor.limits import TransferLimits
from fetchplan.executor.retry import RetryPolicy
from fetchplan.executor.run import FetchOptions, execute_plan
from fetchplan.executor.summary import FetchResult
from fetchplan.schemas.manifest import load_manifest
from tests.support.faults import (
    Fault,
    FaultServer,
    PlanFile,
    Response,
    self_signed_certificate,
    write_plan,
)

SIZE = 200_000
FAST = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.05, retry_after_cap=5.0)
ONE_TRY = replace(FAST, attempts=1, max_tries=1)
LIMITS = TransferLimits(connect_timeout=2.0, stall_window=2.0, stall_min_bytes=1024)


def _options(tmp_path: Path, **changes: object) -> FetchOptions:
    base = FetchOptions(
        cache_dir=tmp_path / "cache",
        use_pip_config=False,
        retry=FAST,
        limits=LIMITS,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _serve(
    server: FaultServer, tmp_path: Path, fault: Fault | None = None, size: int = SIZE
) -> tuple[Path, bytes, str]:
    data = os.urandom(size)
    path = "/files/demo-1.0-py3-none-any.whl"
    url = server.add(path, data, fault)
    plan = write_plan(tmp_path / "plan.json", [PlanFile(url, data, "demo-1.0-py3-none-any.whl")])
    return plan, data, path


def _final(tmp_path: Path) -> Path:
    return tmp_path / "wheels" / "demo-1.0-py3-none-any.whl"


def _assert_verified(tmp_path: Path, result: FetchResult, data: bytes, source: str) -> None:
    assert result.ok, result.failures
    assert _final(tmp_path).read_bytes() == data
    manifest = load_manifest(tmp_path / "wheels" / "manifest.json")
    [entry] = manifest.artifacts
    assert (entry.path, entry.sha256, entry.size) == (
        "demo-1.0-py3-none-any.whl",
        hashlib.sha256(data).hexdigest(),
        len(data),
    )
    assert entry.source == source
    assert not list((tmp_path / "wheels" / ".fetchplan" / "partial").iterdir())


def _assert_failed(tmp_path: Path, result: FetchResult, reason: str) -> None:
    assert not result.ok
    [failure] = result.failures
    assert reason in failure.reason
    assert not _final(tmp_path).exists()
    assert load_manifest(tmp_path / "wheels" / "manifest.json").artifacts == ()


def test_clean_fetch_keeps_one_connection(server: FaultServer, tmp_path: Path) -> None:
    files = []
    for i in range(6):
        data = os.urandom(50_000 + i)
        files.append(PlanFile(server.add(f"/f{i}.whl", data), data, f"f{i}.whl"))
    plan = write_plan(tmp_path / "plan.json", files)
    result = execute_plan(plan, _options(tmp_path, jobs=1))
    assert result.ok
    assert server.bytes_sent() == sum(len(f.content) for f in files)
    # One worker, keep-alive: every request came over the same connection.
    assert len({r.peer_port for r in server.requests}) == 1
    assert all(r.headers.get("Accept-Encoding") == "identity" for r in server.requests)
    manifest = load_manifest(tmp_path / "wheels" / "manifest.json")
    assert [a.path for a in manifest.artifacts] == [f.destination for f in files]
    assert (tmp_path / "wheels" / "plan.json").is_file()


def test_reset_after_n_bytes_resumes(server: FaultServer, tmp_path: Path) -> None:
    plan, data, path = _serve(server, tmp_path, Fault(reset_after=80_000, faulty_requests=1))
    result = execute_plan(plan, _options(tmp_path))
    _assert_verified(tmp_path, result, data, "resumed")
    first, second = server.requests_for(path)
    assert "Range" not in first.headers
    assert second.headers["Range"].startswith("bytes=")
    assert second.headers["If-Range"].startswith('"')
    assert second.status == 206
    # Nothing the client kept was sent twice.
    assert server.bytes_sent(path) <= SIZE + 80_000
    assert second.body_bytes < SIZE


def test_clean_close_before_content_length_resumes_exactly(
    server: FaultServer, tmp_path: Path
) -> None:
    plan, data, path = _serve(server, tmp_path, Fault(close_after=70_000, faulty_requests=2))
    result = execute_plan(plan, _options(tmp_path))
    _assert_verified(tmp_path, result, data, "resumed")
    assert [r.body_bytes for r in server.requests_for(path)] == [70_000, 70_000, SIZE - 140_000]
    assert server.bytes_sent(path) == SIZE
    assert result.retries == 2


def test_body_longer_than_announced_plan_size_fails(server: FaultServer, tmp_path: Path) -> None:
    plan, _, path = _serve(server, tmp_path, Fault(extra_bytes=10))
    result = execute_plan(plan, _options(tmp_path))
    _assert_failed(tmp_path, result, f"server announces {SIZE + 10} bytes, the plan says {SIZE}")
    # Tried once more from zero, then gave up; nothing was streamed.
    assert len(server.requests_for(path)) == 2


def test_body_longer_than_plan_size_is_cut_off(server: FaultServer, tmp_path: Path) -> None:
    plan, _, path = _serve(server, tmp_path, Fault(extra_bytes=300_000, no_length=True))
    result = execute_plan(plan, _options(tmp_path))
    _assert_failed(tmp_path, result, f"server sent more than the plan's {SIZE} bytes")
    assert len(server.requests_for(path)) == 2


def test_range_answered_with_200_restarts_from_zero(server: FaultServer, tmp_path: Path) -> None:
    plan, data, path = _serve(server, tmp_path, Fault(close_after=60_000))
    assert not execute_plan(plan, _options(tmp_path, retry=ONE_TRY)).ok
    server.faults[path] = Fault(ignore_range=True)
    result = execute_plan(plan, _options(tmp_path))
    _assert_verified(tmp_path, result, data, "downloaded")
    last = server.requests_for(path)[-1]
    assert last.headers.get("Range") == "bytes=60000-"
    assert last.status == 200
    assert server.bytes_sent(path) == 60_000 + SIZE


def test_wrong_content_range_start_discards_partial(server: FaultServer, tmp_path: Path) -> None:
    plan, data, path = _serve(server, tmp_path, Fault(close_after=60_000))
    first = execute_plan(plan, _options(tmp_path, retry=ONE_TRY))
    assert not first.ok  # leaves a 60000-byte partial
    # From now on every 206 starts 1000 bytes before the byte asked for.
    server.faults[path] = Fault(range_start_shift=-1000)
    result = execute_plan(plan, _options(tmp_path))
    _assert_verified(tmp_path, result, data, "downloaded")
    answers = [(r.status, r.headers.get("Range")) for r in server.requests_for(path)]
    assert answers[-2:] == [(206, "bytes=60000-"), (200, None)]


def test_changed_etag_with_if_range_restarts(server: FaultServer, tmp_path: Path) -> None:
    plan, data, path = _serve(
        server, tmp_path, Fault(close_after=60_000, faulty_requests=1, change_etag=True)
    )
    result = execute_plan(plan, _options(tmp_path))
    _assert_verified(tmp_path, result, data, "downloaded")
    first, second = server.requests_for(path)
    assert "If-Range" not in first.headers
    assert second.headers.get("If-Range") and second.status == 200


def test_changed_etag_ignoring_if_range_is_caught(server: FaultServer, tmp_path: Path) -> None:
    plan, data, path = _serve(server, tmp_path, Fault(close_after=60_000))
    assert not execute_plan(plan, _options(tmp_path, retry=ONE_TRY)).ok
    # Re-deployed with a new ETag by a server that serves ranges whatever If-Range says.
    server.faults[path] = Fault(change_etag=True, ignore_if_range=True)
    result = execute_plan(plan, _options(tmp_path))
    _assert_verified(tmp_path, result, data, "downloaded")
    # The 206 of another version is refused; the file comes whole from zero.
    assert [r.status for r in server.requests_for(path)] == [200, 206, 200]


def test_weak_etag_is_never_sent_as_if_range(server: FaultServer, tmp_path: Path) -> None:
    # A weak ETag cannot vouch for a splice; the plan's sha256 does (a plain Range).
    plan, data, path = _serve(
        server, tmp_path, Fault(close_after=60_000, faulty_requests=1, weak_etag=True)
    )
    result = execute_plan(plan, _options(tmp_path))
    _assert_verified(tmp_path, result, data, "resumed")
    first, second = server.requests_for(path)
    assert "Range" not in first.headers
    assert second.headers.get("Range") == f"bytes={first.body_bytes}-"
    assert all("If-Range" not in r.headers for r in server.requests_for(path))


def test_429_and_503_honour_retry_after(server: FaultServer, tmp_path: Path) -> None:
    until = int(time.time()) + 2
    fault = Fault(
        responses=[
            Response(429, {"Retry-After": "1"}),
            Response(503, {"Retry-After": formatdate(until, usegmt=True)}),
        ]
    )
    plan, data, path = _serve(server, tmp_path, fault)
    result = execute_plan(plan, _options(tmp_path))
    _assert_verified(tmp_path, result, data, "downloaded")
    first, second, third = server.requests_for(path)
    assert [first.status, second.status, third.status] == [429, 503, 200]
    assert second.at - first.at >= 0.95
    assert third.at >= until - 0.05
    assert result.retries == 2


def test_retry_after_is_capped(server: FaultServer, tmp_path: Path) -> None:
    fault = Fault(responses=[Response(503, {"Retry-After": "3600"})])
    plan, data, _ = _serve(server, tmp_path, fault)
    started = time.monotonic()
    result = execute_plan(plan, _options(tmp_path, retry=replace(FAST, retry_after_cap=0.2)))
    assert time.monotonic() - started < 5
    _assert_verified(tmp_path, result, data, "downloaded")


def test_404_is_not_retried(server: FaultServer, tmp_path: Path) -> None:
    plan, _, path = _serve(server, tmp_path, Fault(status=404))
    result = execute_plan(plan, _options(tmp_path))
    _assert_failed(tmp_path, result, "HTTP 404")
    assert len(server.requests_for(path)) == 1


def test_5xx_retried_until_the_budget_is_spent(server: FaultServer, tmp_path: Path) -> None:
    plan, _, path = _serve(server, tmp_path, Fault(status=502))
    result = execute_plan(plan, _options(tmp_path))
    _assert_failed(tmp_path, result, "HTTP 502")
    assert len(server.requests_for(path)) == FAST.attempts


def test_slow_drip_trips_the_stall_detector(server: FaultServer, tmp_path: Path) -> None:
    plan, _, path = _serve(server, tmp_path, Fault(drip_interval=0.01), size=5_000)
    limits = replace(LIMITS, stall_window=0.3, stall_min_bytes=1024)
    started = time.monotonic()
    result = execute_plan(plan, _options(tmp_path, limits=limits, retry=replace(FAST, attempts=2)))
    assert time.monotonic() - started < 10
    _assert_failed(tmp_path, result, "stalled")
    assert len(server.requests_for(path)) == 2


def test_silent_server_trips_the_read_timeout(server: FaultServer, tmp_path: Path) -> None:
    plan, _, path = _serve(server, tmp_path, Fault(drip_interval=5.0), size=5_000)
    limits = replace(LIMITS, stall_window=0.3)
    started = time.monotonic()
    result = execute_plan(plan, _options(tmp_path, limits=limits, retry=ONE_TRY))
    assert time.monotonic() - started < 10
    _assert_failed(tmp_path, result, "connection lost")
    assert len(server.requests_for(path)) == 1


def test_deadline_trips_a_retry_and_the_partial_grows(server: FaultServer, tmp_path: Path) -> None:
    plan, data, path = _serve(server, tmp_path, Fault(rate=150_000), size=150_000)
    limits = replace(LIMITS, deadline=0.15, stall_min_bytes=1024)
    result = execute_plan(plan, _options(tmp_path, limits=limits))
    _assert_verified(tmp_path, result, data, "resumed")
    requests = server.requests_for(path)
    assert len(requests) >= 3
    assert all(r.status == 206 for r in requests[1:])
    assert server.bytes_sent(path) < 150_000 + 40_000


def test_gzip_content_encoding_is_decoded_and_verified(server: FaultServer, tmp_path: Path) -> None:
    plan, data, _ = _serve(server, tmp_path, Fault(gzip=True))
    result = execute_plan(plan, _options(tmp_path))
    _assert_verified(tmp_path, result, data, "downloaded")


def test_gzip_header_on_a_gzip_file_keeps_the_bytes(server: FaultServer, tmp_path: Path) -> None:
    data = gzip.compress(os.urandom(50_000))
    path = "/files/demo-1.0.tar.gz"
    server.add(path, data)
    url = server.url + path
    plan = write_plan(tmp_path / "plan.json", [PlanFile(url, data, "demo-1.0.tar.gz")])
    # A server that labels a .tar.gz as gzip-encoded: the raw bytes are the file.
    server.fault(path).responses.append(
        Response(200, {"Content-Encoding": "gzip", "Content-Type": "application/x-tar"}, data)
    )
    result = execute_plan(plan, _options(tmp_path))
    assert result.ok, result.failures
    assert (tmp_path / "wheels" / "demo-1.0.tar.gz").read_bytes() == data


def test_wrong_content_with_200_fails_after_one_fresh_try(
    server: FaultServer, tmp_path: Path
) -> None:
    plan, _, path = _serve(server, tmp_path, Fault(body=os.urandom(SIZE)))
    result = execute_plan(plan, _options(tmp_path))
    _assert_failed(tmp_path, result, "sha256 mismatch")
    assert len(server.requests_for(path)) == 2
    # The wrong bytes are not kept as a partial either.
    assert not list((tmp_path / "wheels" / ".fetchplan" / "partial").iterdir())


def test_redirect_to_another_origin_drops_authorization(tmp_path: Path) -> None:
    data = os.urandom(SIZE)
    with FaultServer() as origin, FaultServer() as other:
        target = other.add("/blob/demo.whl", data)
        url = origin.add(
            "/files/demo.whl",
            b"",
            Fault(require_auth=("alice", "s3cret"), redirect_to=target),
        )
        plan = write_plan(tmp_path / "plan.json", [PlanFile(url, data, "demo.whl")])
        options = _options(
            tmp_path, credential_urls=(f"http://alice:s3cret@127.0.0.1:{origin.port}/simple/",)
        )
        result = execute_plan(plan, options)
        assert result.ok, result.failures
        [asked] = origin.requests_for("/files/demo.whl")
        assert asked.headers.get("Authorization", "").startswith("Basic ")
        [redirected] = other.requests_for("/blob/demo.whl")
        assert "Authorization" not in redirected.headers
    manifest_text = (tmp_path / "wheels" / "manifest.json").read_text()
    assert "s3cret" not in manifest_text
    assert json.loads(manifest_text)["artifacts"][0]["url"] == url


def test_redirect_loop_fails_without_retry(server: FaultServer, tmp_path: Path) -> None:
    plan, _, path = _serve(server, tmp_path)
    server.fault(path).redirect_to = server.url + path
    result = execute_plan(plan, _options(tmp_path))
    _assert_failed(tmp_path, result, "redirects")
    assert len(server.requests_for(path)) == 11


def test_failed_run_keeps_partial_and_next_run_resumes(server: FaultServer, tmp_path: Path) -> None:
    plan, data, path = _serve(server, tmp_path, Fault(close_after=90_000, faulty_requests=1))
    first = execute_plan(plan, _options(tmp_path, retry=ONE_TRY))
    assert not first.ok
    part = tmp_path / "wheels" / ".fetchplan" / "partial" / "demo-1.0-py3-none-any.whl.part"
    assert part.stat().st_size == 90_000
    assert not _final(tmp_path).exists()
    second = execute_plan(plan, _options(tmp_path))
    _assert_verified(tmp_path, second, data, "resumed")
    assert server.bytes_sent(path) == SIZE


def test_cache_serves_other_destinations_and_heals(server: FaultServer, tmp_path: Path) -> None:
    plan, data, path = _serve(server, tmp_path)
    assert execute_plan(plan, _options(tmp_path)).ok
    sha = hashlib.sha256(data).hexdigest()
    other = tmp_path / "other"
    again = execute_plan(plan, _options(tmp_path, destination=other))
    assert again.sources()["cache"] == 1
    assert server.bytes_sent(path) == SIZE
    # A rotten cache entry is not used: it is removed and the file fetched again.
    cached = tmp_path / "cache" / "sha256" / sha[:2] / sha[2:4] / sha
    cached.unlink()
    cached.write_bytes(b"rot" + data[3:])
    third = execute_plan(plan, _options(tmp_path, destination=tmp_path / "third"))
    assert third.sources()["downloaded"] == 1
    assert (tmp_path / "third" / "demo-1.0-py3-none-any.whl").read_bytes() == data
    assert cached.read_bytes() == data


def test_existing_files_are_rehashed_not_trusted(server: FaultServer, tmp_path: Path) -> None:
    plan, data, path = _serve(server, tmp_path)
    # Not a stall test: a loaded machine must not turn the download into a resumed one.
    patient = replace(LIMITS, stall_window=60.0)
    assert execute_plan(plan, _options(tmp_path, use_cache=False, limits=patient)).ok
    again = execute_plan(plan, _options(tmp_path, use_cache=False, limits=patient))
    assert again.sources()["existing"] == 1
    assert server.bytes_sent(path) == SIZE
    _final(tmp_path).write_bytes(b"X" + data[1:])
    healed = execute_plan(plan, _options(tmp_path, use_cache=False, limits=patient))
    assert healed.ok, healed.failures
    assert healed.sources()["downloaded"] == 1
    assert _final(tmp_path).read_bytes() == data


def test_complete_partial_is_verified_without_network(server: FaultServer, tmp_path: Path) -> None:
    plan, data, path = _serve(server, tmp_path, Fault(close_after=SIZE - 1, faulty_requests=1))
    assert not execute_plan(plan, _options(tmp_path, retry=ONE_TRY)).ok
    part = tmp_path / "wheels" / ".fetchplan" / "partial" / "demo-1.0-py3-none-any.whl.part"
    with part.open("ab") as fh:  # as if killed between the last byte and the rename
        fh.write(data[-1:])
    server.wait_idle()
    server.reset_counters()
    result = execute_plan(plan, _options(tmp_path))
    _assert_verified(tmp_path, result, data, "resumed")
    assert server.requests_for(path) == []


def test_unknown_size_is_verified_by_hash(server: FaultServer, tmp_path: Path) -> None:
    data = os.urandom(30_000)
    url = server.add("/x.whl", data)
    plan = write_plan(tmp_path / "plan.json", [PlanFile(url, data, "x.whl", size=None)])
    result = execute_plan(plan, _options(tmp_path))
    assert result.ok
    assert load_manifest(tmp_path / "wheels" / "manifest.json").artifacts[0].size == 30_000


def test_tls_errors_are_not_retried(tmp_path: Path) -> None:
    data = os.urandom(1000)
    with FaultServer(tls=self_signed_certificate(tmp_path)) as secure:
        url = secure.add("/x.whl", data)
        plan = write_plan(tmp_path / "plan.json", [PlanFile(url, data, "x.whl")])
        result = execute_plan(plan, _options(tmp_path))
    failure = result.failures[0]
    assert "TLS error" in failure.reason
    assert failure.timing.tries == 1
    assert secure.requests == []


def test_https_to_http_redirect_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(1000)
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with FaultServer(tls=(cert, key)) as secure, FaultServer() as plain:
        target = plain.add("/x.whl", data)
        url = secure.add("/x.whl", b"", Fault(redirect_to=target))
        plan = write_plan(tmp_path / "plan.json", [PlanFile(url, data, "x.whl")])
        result = execute_plan(plan, _options(tmp_path))
        assert [r.status for r in secure.requests] == [302]
        assert plain.requests == []
    assert "https to http refused" in result.failures[0].reason


def test_netrc_credentials_are_used(server: FaultServer, tmp_path: Path) -> None:
    netrc = Path(os.environ["NETRC"])
    netrc.parent.mkdir(parents=True, exist_ok=True)
    netrc.write_text("machine 127.0.0.1 login carol password from-netrc\n")
    netrc.chmod(0o600)
    plan, data, path = _serve(server, tmp_path, Fault(require_auth=("carol", "from-netrc")))
    result = execute_plan(plan, _options(tmp_path))
    _assert_verified(tmp_path, result, data, "downloaded")
    assert [r.status for r in server.requests_for(path)] == [200]


def test_resumed_partial_with_a_bad_prefix_is_fetched_again(
    server: FaultServer, tmp_path: Path
) -> None:
    plan, data, path = _serve(server, tmp_path, Fault(close_after=90_000))
    assert not execute_plan(plan, _options(tmp_path, retry=ONE_TRY)).ok
    part = tmp_path / "wheels" / ".fetchplan" / "partial" / "demo-1.0-py3-none-any.whl.part"
    with part.open("r+b") as fh:  # the disk lost a write: the kept bytes are wrong
        fh.seek(1000)
        fh.write(b"\0" * 100)
    server.faults[path] = Fault()
    result = execute_plan(plan, _options(tmp_path))
    _assert_verified(tmp_path, result, data, "downloaded")
    assert [r.status for r in server.requests_for(path)][-2:] == [206, 200]
