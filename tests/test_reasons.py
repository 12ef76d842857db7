"""failure_reason: the cause of a failed request in one short line, for every stage."""

from __future__ import annotations

import requests
import urllib3
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import (
    IncompleteRead,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from fetchplan._reasons import failure_reason

URL = "/packages/aa/bb/" + "x" * 150 + "/demo-1.0-py3-none-any.whl"


def _refused() -> MaxRetryError:
    conn = HTTPConnection("127.0.0.1", 9)
    cause = NewConnectionError(conn, "Failed to establish a new connection: [Errno 111] refused")
    return MaxRetryError(HTTPConnectionPool("127.0.0.1", 9), URL, cause)


def test_a_refused_connection_names_the_errno_not_the_pool_or_the_object() -> None:
    outer = requests.ConnectionError(_refused())
    assert len(str(outer)) > 200  # what was printed before, cut before its cause
    reason = failure_reason(outer)
    assert reason.endswith("Failed to establish a new connection: [Errno 111] refused")
    assert "Max retries" not in reason and " object at 0x" not in reason, reason


def test_a_broken_body_names_how_much_was_read() -> None:
    inner = IncompleteRead(100, 900)
    broken = ProtocolError(f"Connection broken: {inner!r}", inner)
    reason = failure_reason(requests.exceptions.ChunkedEncodingError(broken))
    assert "100 bytes read" in reason and "900 more expected" in reason


def test_a_timeout_names_the_timeout() -> None:
    pool = HTTPConnectionPool("127.0.0.1", 9)
    cause = ReadTimeoutError(pool, URL, "Read timed out. (read timeout=2)")
    reason = failure_reason(requests.ReadTimeout(MaxRetryError(pool, URL, cause)))
    assert reason.endswith("Read timed out. (read timeout=2)") and len(reason) <= 200


def test_credentials_never_appear_and_long_causes_are_cut_to_the_limit() -> None:
    exc = OSError("proxy https://user:secret@proxy.example.test failed: " + "y" * 400)
    reason = failure_reason(urllib3.exceptions.ProxyError("proxy", exc), limit=80)
    assert "secret" not in reason and len(reason) == 80 and reason.endswith("...")


def test_an_empty_message_gives_the_type_and_a_cycle_ends() -> None:
    assert failure_reason(TimeoutError()) == "TimeoutError"
    a, b = ValueError(), ValueError()
    a.args, b.args = (b,), (a,)
    assert failure_reason(a) == "ValueError"
