"""The test servers do what their docstrings promise (everything else tests against them)."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import MakeIndex, MakeIndexServer, MakeNginxServer, MakePypiServer
from tests.support.index import read_metadata
from tests.support.nginx import NginxOptions, NginxServer
from tests.support.servers import (
    HTML_TYPE,
    JSON_TYPE,
    Formats,
    IndexRequestHandler,
    IndexServer,
    ServerOptions,
    parse_accept,
    parse_range,
)
from tests.support.wheels import Dist

PIP_ACCEPT = f"{JSON_TYPE}, {HTML_TYPE}; q=0.1, text/html; q=0.01"


@pytest.fixture
def root(make_index: MakeIndex) -> Path:
    return make_index([Dist("alpha", "1.0", padding=40_000), Dist("beta", "2.0")])


def _wheel(root: Path, project: str = "alpha") -> Path:
    return next((root / "files").glob(f"{project}-*.whl"))


# -- pure parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=90-", (90, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=95-200", (95, 99)),
        ("bytes=100-", "unsatisfiable"),
        ("bytes=-0", "unsatisfiable"),
        ("bytes=5-2", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=x-1", None),
    ],
)
def test_parse_range(header: str, expected: object) -> None:
    assert parse_range(header, 100) == expected


def test_parse_accept_keeps_order_and_q() -> None:
    assert parse_accept("a/b;q=0.5, c/d , e/f;level=1;q=0") == [
        ("a/b", 0.5),
        ("c/d", 1.0),
        ("e/f", 0.0),
    ]
    assert parse_accept(None) == [("text/html", 1.0)]


# -- in-process server -------------------------------------------------------------------------


def test_ranges_206_416_and_switch_off(index_server: MakeIndexServer, root: Path) -> None:
    server = index_server(root)
    data = _wheel(root).read_bytes()
    size = len(data)
    url = server.file_url(_wheel(root).name)
    cases = {
        "bytes=10-19": (10, 19),
        "bytes=100-": (100, size - 1),
        "bytes=-30": (size - 30, size - 1),
    }
    for header, (first, last) in cases.items():
        r = requests.get(url, headers={"Range": header}, timeout=5)
        assert r.status_code == 206
        assert r.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert r.content == data[first : last + 1]
    r = requests.get(url, headers={"Range": f"bytes={size}-"}, timeout=5)
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{size}"

    server.options.ranges = False
    r = requests.get(url, headers={"Range": "bytes=0-9"}, timeout=5)
    assert r.status_code == 200
    assert r.content == data
    assert "Accept-Ranges" not in r.headers


def test_if_range_head_and_etag(index_server: MakeIndexServer, root: Path) -> None:
    server = index_server(root)
    data = _wheel(root).read_bytes()
    url = server.file_url(_wheel(root).name)
    head = requests.head(url, timeout=5)
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["Content-Length"]) == len(data)
    etag = head.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    same = requests.get(url, headers={"Range": "bytes=0-3", "If-Range": etag}, timeout=5)
    assert (same.status_code, same.content) == (206, data[:4])
    by_date = head.headers["Last-Modified"]
    same = requests.get(url, headers={"Range": "bytes=0-3", "If-Range": by_date}, timeout=5)
    assert same.status_code == 206
    changed = requests.get(url, headers={"Range": "bytes=0-3", "If-Range": '"other"'}, timeout=5)
    assert (changed.status_code, changed.content) == (200, data)
    assert requests.get(url, headers={"If-None-Match": etag}, timeout=5).status_code == 304


@pytest.mark.parametrize(
    ("formats", "accept", "status", "content_type"),
    [
        ("both", PIP_ACCEPT, 200, JSON_TYPE),
        ("both", None, 200, "text/html; charset=utf-8"),
        ("both", "text/html", 200, "text/html; charset=utf-8"),
        ("both", HTML_TYPE, 200, HTML_TYPE),
        ("both", "application/vnd.pypi.simple.latest+json", 200, JSON_TYPE),
        ("both", f"{JSON_TYPE}; q=0.2, text/html; q=0.9", 200, "text/html; charset=utf-8"),
        ("both", "*/*", 200, "text/html; charset=utf-8"),
        ("both", "image/png", 406, None),
        ("html", PIP_ACCEPT, 200, HTML_TYPE),
        ("html", JSON_TYPE, 406, None),
        ("json", PIP_ACCEPT, 200, JSON_TYPE),
        ("json", "text/html", 406, None),
    ],
)
def test_content_negotiation(
    index_server: MakeIndexServer,
    root: Path,
    formats: Formats,
    accept: str | None,
    *,
    status: int,
    content_type: str | None,
) -> None:
    server = index_server(root)
    server.options.formats = formats
    headers = {"Accept": accept} if accept is not None else {"Accept": ""}
    r = requests.get(server.index_url + "alpha/", headers=headers, timeout=5)
    assert r.status_code == status
    if content_type is not None:
        assert r.headers["Content-Type"] == content_type
        assert r.headers["Vary"] == "Accept"
        if content_type == JSON_TYPE:
            assert r.json()["name"] == "alpha"
        else:
            assert "alpha-1.0-py3-none-any.whl" in r.text


def test_redirects_to_slash_and_refuses_traversal(
    index_server: MakeIndexServer, root: Path
) -> None:
    server = index_server(root)
    r = requests.get(server.url + "/simple/alpha", allow_redirects=False, timeout=5)
    assert (r.status_code, r.headers["Location"]) == (301, "/simple/alpha/")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/simple/../../../etc/passwd")
    assert conn.getresponse().status == 404
    conn.close()


def test_pep658_switch(index_server: MakeIndexServer, root: Path) -> None:
    server = index_server(root)
    wheel = _wheel(root)
    url = server.file_url(wheel.name) + ".metadata"
    r = requests.get(url, timeout=5)
    assert (r.status_code, r.content) == (200, read_metadata(wheel))
    server.options.pep658 = False
    assert requests.get(url, timeout=5).status_code == 404


def test_byte_counter_and_request_log(index_server: MakeIndexServer, root: Path) -> None:
    server = index_server(root)
    size = _wheel(root).stat().st_size
    name = _wheel(root).name
    with requests.Session() as session:
        page = session.get(server.index_url + "alpha/", timeout=5)
        session.get(server.file_url(name), headers={"Range": "bytes=0-99"}, timeout=5)
        whole = session.get(server.file_url(name), timeout=5)
    assert len(whole.content) == size
    assert server.bytes_sent("/files/") == 100 + size
    assert server.bytes_sent() == 100 + size + len(page.content)
    assert server.bytes_by_path()[f"/files/{name}"] == 100 + size
    log = server.requests("/files/")
    assert [(r.method, r.status, r.range, r.bytes_sent) for r in log] == [
        ("GET", 206, "bytes=0-99", 100),
        ("GET", 200, None, size),
    ]
    server.reset_counters()
    assert server.bytes_sent() == 0
    assert server.requests() == []


def test_throttle_and_delay_slow_responses(index_server: MakeIndexServer, root: Path) -> None:
    server = index_server(root)
    url = server.file_url(_wheel(root).name)
    size = _wheel(root).stat().st_size
    started = time.monotonic()
    requests.get(url, timeout=5)
    fast = time.monotonic() - started
    server.options.throttle_bps = 200_000
    started = time.monotonic()
    assert len(requests.get(url, timeout=5).content) == size
    slow = time.monotonic() - started
    assert slow >= size / 200_000 * 0.9
    assert slow > fast
    server.options.throttle_bps = None
    server.options.delay = 0.2
    started = time.monotonic()
    requests.head(url, timeout=5)
    assert time.monotonic() - started >= 0.2


def test_basic_auth(index_server: MakeIndexServer, root: Path) -> None:
    server = index_server(root, options=ServerOptions(auth=("user", "s3cret")))
    r = requests.get(server.index_url, timeout=5)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(server.index_url, auth=("user", "wrong"), timeout=5).status_code == 401
    assert requests.get(server.index_url, auth=("user", "s3cret"), timeout=5).status_code == 200


def test_hooks_answer_and_truncate(index_server: MakeIndexServer, root: Path) -> None:
    server = index_server(root)
    name = _wheel(root).name
    data = _wheel(root).read_bytes()

    def busy(handler: IndexRequestHandler) -> bool:
        if handler.url_path.endswith("/simple/"):
            handler.respond(503, b"busy\n", {"Retry-After": "1"})
            return True
        if handler.url_path.endswith(".whl"):
            handler.serve_default(abort_after=1000)
            return True
        return False

    server.set_handler_hook(busy)
    r = requests.get(server.index_url, timeout=5)
    assert (r.status_code, r.headers["Retry-After"]) == (503, "1")
    assert requests.get(server.index_url + "beta/", timeout=5).status_code == 200

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", f"/files/{name}")
    response = conn.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead) as info:
        response.read()
    assert info.value.partial == data[:1000]
    conn.close()
    assert server.bytes_sent("/files/") == 1000

    def reset(handler: IndexRequestHandler) -> bool:
        handler.abort()
        return True

    server.set_handler_hook(reset)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.index_url, timeout=5)

    server.set_handler_hook(None)
    assert requests.get(server.file_url(name), timeout=5).content == data


def test_keep_alive_and_close(root: Path) -> None:
    with IndexServer(root) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        for _ in range(3):
            conn.request("GET", "/simple/beta/", headers={"Accept": JSON_TYPE})
            response = conn.getresponse()
            assert json.loads(response.read())["name"] == "beta"
        conn.close()
        sock_count = len(server.requests())
    assert sock_count == 3
    with pytest.raises(requests.ConnectionError):
        requests.get(server.index_url, timeout=2)


# -- nginx -------------------------------------------------------------------------------------


def test_nginx_ranges_negotiation_and_counter(nginx_server: MakeNginxServer, root: Path) -> None:
    server = nginx_server(root)
    wheel = _wheel(root)
    data = wheel.read_bytes()
    with requests.Session() as session:
        page = session.get(server.index_url + "alpha/", headers={"Accept": PIP_ACCEPT}, timeout=5)
        assert page.headers["Content-Type"] == JSON_TYPE
        assert page.json()["name"] == "alpha"
        html = session.get(server.index_url + "alpha/", headers={"Accept": "text/html"}, timeout=5)
        assert html.headers["Content-Type"].startswith("text/html")
        assert wheel.name in html.text

        part = session.get(server.file_url(wheel.name), headers={"Range": "bytes=-64"}, timeout=5)
        assert part.status_code == 206
        assert (
            part.headers["Content-Range"] == f"bytes {len(data) - 64}-{len(data) - 1}/{len(data)}"
        )
        assert part.content == data[-64:]
        stale = session.get(
            server.file_url(wheel.name),
            headers={"Range": "bytes=0-9", "If-Range": '"stale"'},
            timeout=5,
        )
        assert (stale.status_code, stale.content) == (200, data)
        meta = session.get(server.file_url(wheel.name) + ".metadata", timeout=5)
        assert meta.content == read_metadata(wheel)

    logged = server.wait_for_requests(5)
    assert [r.status for r in logged] == [200, 200, 206, 200, 200]
    assert logged[2].range == "bytes=-64"
    assert server.bytes_sent(".whl") == 64 + len(data) + len(meta.content)
    assert server.bytes_sent("/simple/") == len(page.content) + len(html.content)
    server.reset_counters()
    assert server.requests() == []


def test_nginx_limit_rate_slows_transfer(nginx_server: MakeNginxServer, root: Path) -> None:
    rate = 32_000
    server = nginx_server(root, options=NginxOptions(limit_rate=rate))
    size = _wheel(root).stat().st_size
    started = time.monotonic()
    r = requests.get(server.file_url(_wheel(root).name), timeout=10)
    assert len(r.content) == size
    # nginx sends the first `rate` bytes at once, then throttles.
    assert time.monotonic() - started >= (size - rate) / rate * 0.7


def test_nginx_wait_idle_waits_for_a_hung_up_request_to_be_logged(
    nginx_server: MakeNginxServer, root: Path
) -> None:
    server = nginx_server(root, options=NginxOptions(limit_rate=4_000))
    wheel = _wheel(root)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", f"/files/{wheel.name}")
    answer = connection.getresponse()
    assert answer.read(100)  # the response has begun and, throttled, lasts seconds more
    with pytest.raises(TimeoutError, match="Active connections: 2"):
        server.wait_idle(timeout=0.3)
    connection.close()
    server.wait_idle()
    (logged,) = server.requests()
    assert (logged.status, logged.completed) == (200, False)
    assert logged.body_bytes_sent < wheel.stat().st_size


def test_nginx_start_failure_is_loud(tmp_path: Path, root: Path) -> None:
    with pytest.raises(RuntimeError, match="unknown directive"):
        NginxServer(root, tmp_path / "bad", NginxOptions(extra_server_config="bogus_directive on;"))


# -- pypiserver --------------------------------------------------------------------------------


def test_pypiserver_lists_and_serves_a_built_wheel(pypiserver: MakePypiServer) -> None:
    server = pypiserver([Dist("gamma", "0.3")])
    page = requests.get(server.index_url + "gamma/", timeout=5)
    assert page.status_code == 200
    match = re.search(
        r'href="([^"#]+gamma-0\.3-py3-none-any\.whl)#sha256=([0-9a-f]{64})"', page.text
    )
    assert match is not None
    wheel = requests.get(requests.compat.urljoin(page.url, match.group(1)), timeout=5)
    assert hashlib.sha256(wheel.content).hexdigest() == match.group(2)
    missing = requests.get(server.index_url + "not-there/", allow_redirects=False, timeout=5)
    assert missing.status_code == 404
