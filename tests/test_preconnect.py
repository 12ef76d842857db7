"""Connections to the index opened during the planner's imports, and the session taking them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest

from fetchplan.auth import CredentialStore
from fetchplan.errors import FetchplanError
from fetchplan.pipconfig import PipSettings
from fetchplan.planner import preconnect
from fetchplan.planner.api import PlanOptions, Sources, early_pages, find_sources, make_plan
from fetchplan.planner.http import HttpPolicy, RecordingSession, get_whole, make_session
from fetchplan.planner.reqfile import RequirementSet, parse_requirement_string
from fetchplan.planner.sources import ACCEPT, JSON_TYPE, SESSION_HEADERS
from fetchplan.planner.timings import Timings
from tests.conftest import MakeIndexServer
from tests.support.faults import (
    Fault,
    FaultServer,
    Request,
    Response,
    self_signed_certificate,
)
from tests.support.wheels import Dist

PAGE_HEADERS = {**SESSION_HEADERS, "Accept": ACCEPT}
PAGE = json.dumps({"meta": {"api-version": "1.1"}, "name": "demo", "files": []}).encode()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(5)
        yield server


def _port(server: socket.socket) -> int:
    return int(server.getsockname()[1])


def test_sockets_are_handed_out_oldest_first_until_none_is_left(
    listener: socket.socket,
) -> None:
    pre = preconnect.Preconnector()
    pre.open("127.0.0.1", _port(listener), 3, timeout=5)
    accepted = [listener.accept()[0] for _ in range(3)]
    taken = [pre.take("127.0.0.1", _port(listener)) for _ in range(3)]
    assert all(sock is not None for sock in taken)
    # The order the server accepted them in: a server serving one connection at a time
    # reads the first one it accepted.
    assert [s.getsockname() for s in taken if s] == [a.getpeername() for a in accepted]
    assert pre.take("127.0.0.1", _port(listener)) is None
    assert pre.take("127.0.0.1", _port(listener) + 1) is None
    assert pre.taken == 3
    for sock in (*taken, *accepted):
        assert sock is not None
        sock.close()


def test_a_socket_the_server_closed_is_not_handed_out(listener: socket.socket) -> None:
    pre = preconnect.Preconnector()
    pre.open("127.0.0.1", _port(listener), 2, timeout=5)
    first, _ = listener.accept()
    second, _ = listener.accept()
    first.close()
    time.sleep(0.1)
    sock = pre.take("127.0.0.1", _port(listener))
    assert sock is not None
    assert sock.getsockname() == second.getpeername()
    assert pre.take("127.0.0.1", _port(listener)) is None
    sock.close()
    second.close()


def test_sockets_not_taken_are_closed_after_max_idle(listener: socket.socket) -> None:
    pre = preconnect.start(f"http://127.0.0.1:{_port(listener)}/simple/", 2, max_idle=0.3)
    assert pre is not None
    accepted = [listener.accept()[0] for _ in range(2)]
    for conn in accepted:
        conn.settimeout(5)
        assert conn.recv(1) == b""  # the client side was closed: no request ever came
        conn.close()
    assert pre.take("127.0.0.1", _port(listener)) is None


def test_connections_still_being_made_are_given_up_at_max_idle() -> None:
    # A server that accepts nothing: past its one queued connection, connects stay pending.
    with socket.create_server(("127.0.0.1", 0), backlog=0) as full:
        pre = preconnect.Preconnector()
        runner = threading.Thread(target=pre.run, args=("127.0.0.1", _port(full), 8, 60.0, 0.3))
        runner.start()
        runner.join(20)
        assert not runner.is_alive()  # it did not wait out the 60 s connect timeout
        assert pre.take("127.0.0.1", _port(full)) is None


def test_nothing_is_opened_once_closed(listener: socket.socket) -> None:
    pre = preconnect.Preconnector()
    pre.close()  # the planner was done before the connections were to be made
    pre.run("127.0.0.1", _port(listener), 2, 5.0, 0.3)
    listener.settimeout(0.2)
    with pytest.raises(TimeoutError):
        listener.accept()


def test_close_closes_what_is_not_taken(listener: socket.socket) -> None:
    pre = preconnect.Preconnector()
    pre.open("127.0.0.1", _port(listener), 1, timeout=5)
    conn, _ = listener.accept()
    pre.close()
    conn.settimeout(5)
    assert conn.recv(1) == b""
    conn.close()
    assert pre.take("127.0.0.1", _port(listener)) is None


@pytest.mark.parametrize(
    "url", ["file:///srv/index/", "ftp://127.0.0.1/simple/", "http://127.0.0.1:bad/"]
)
def test_nothing_is_opened_for_other_locations(url: str) -> None:
    assert preconnect.start(url, 4) is None


def test_nothing_is_opened_when_a_proxy_applies(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{_port(listener)}/simple/"
    monkeypatch.setenv("http_proxy", "http://proxy.invalid:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert preconnect.start(url, 4) is None
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    pre = preconnect.start(url, 1, max_idle=0.2)
    assert pre is not None
    listener.accept()[0].close()


def test_the_session_sends_its_first_request_on_a_preconnected_socket(
    index_server: MakeIndexServer,
) -> None:
    server = index_server([Dist("demo", "1.0")])
    host, port = server.url.split("//")[1].split(":")
    pre = preconnect.Preconnector()
    pre.open(host, int(port), 2, timeout=5)
    session = make_session(HttpPolicy(pool_size=2), CredentialStore(), preconnector=pre)
    with session:
        response = session.get(f"{server.index_url}demo/", timeout=10)
        assert response.status_code == 200
        assert "demo" in response.text
        assert pre.taken == 1
        # Kept alive and reused: the second request needs no new connection.
        assert session.get(f"{server.index_url}demo/", timeout=10).status_code == 200
        assert pre.taken == 1
    pre.close()


def test_the_planner_entry_imports_no_http_stack_and_no_resolver() -> None:
    code = (
        "import sys, fetchplan.planner.api; "
        "print(sorted(m for m in ('requests', 'urllib3', 'resolvelib', "
        "'fetchplan.planner.planning') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- pages requested early --------------------------------------------------------------------


def _early(
    server: FaultServer, *paths: str, ca_bundle: str | None = None, timings: Timings | None = None
) -> preconnect.Preconnector:
    pre = preconnect.start(
        f"{server.url}/simple/",
        1,
        max_idle=0.2,
        pages=[server.url + path for path in paths],
        headers=PAGE_HEADERS,
        ca_bundle=ca_bundle,
        timings=timings,
    )
    assert pre is not None
    return pre


def _session(
    pre: preconnect.Preconnector, headers: dict[str, str] | None = None
) -> RecordingSession:
    return make_session(
        HttpPolicy(pool_size=2), CredentialStore(), preconnector=pre, headers=headers
    )


def _requests_seen(server: FaultServer, path: str, count: int) -> list[Request]:
    """The server's requests for ``path`` once it has seen ``count`` (or after 10 s)."""
    deadline = time.monotonic() + 10
    while len(server.requests_for(path)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.requests_for(path)


def _get(session: RecordingSession, url: str) -> bytes:
    fetched = get_whole(session, url, headers={"Accept": ACCEPT}, timeout=10)
    assert fetched.status_code == 200
    return fetched.content


def test_an_early_page_is_handed_to_the_session_once(server: FaultServer) -> None:
    url = server.add("/simple/demo/", PAGE, Fault(gzip=True))
    timings = Timings()
    pre = _early(server, "/simple/demo/", timings=timings)
    with _session(pre) as session:
        assert _get(session, url) == PAGE  # decoded from gzip, as urllib3 decodes it
        assert len(server.requests_for("/simple/demo/")) == 1
        assert pre.pages is not None
        assert pre.pages.used == 1
        # Sent as the session sends its own requests: same headers, nothing more.
        sent = {k.lower(): v for k, v in server.requests_for("/simple/demo/")[0].headers.items()}
        assert {k: v for k, v in sent.items() if k != "host"} == {
            k.lower(): v for k, v in PAGE_HEADERS.items()
        }
        assert _get(session, url) == PAGE  # once: the next GET is the session's own
        assert len(server.requests_for("/simple/demo/")) == 2
    [record] = [r for r in timings.requests if r.thread == "fetchplan-early"]
    assert (record.url, record.status, record.phase) == (url, 200, "index")
    pre.close()


def test_a_page_asked_for_before_it_is_sent_is_waited_for(server: FaultServer) -> None:
    url = server.add("/simple/demo/", PAGE)
    pages = preconnect.EarlyPages([url], PAGE_HEADERS)
    answers: list[preconnect.EarlyAnswer | None] = []
    taker = threading.Thread(target=lambda: answers.append(pages.take(url, PAGE_HEADERS)))
    taker.start()
    time.sleep(0.05)
    pages.send(preconnect.Origin("127.0.0.1", server.port, timeout=10))
    taker.join(10)
    [answer] = answers
    assert answer is not None
    assert (answer.status, answer.content) == (200, PAGE)
    assert pages.take(url, PAGE_HEADERS) is None  # handed out once


def test_an_early_page_is_not_used_for_a_request_with_other_headers(
    server: FaultServer,
) -> None:
    url = server.add("/simple/demo/", PAGE)
    pre = _early(server, "/simple/demo/")
    with _session(pre, headers={"X-Extra": "1"}) as session:
        assert _get(session, url) == PAGE
        requests = _requests_seen(server, "/simple/demo/", 2)  # the early one may come last
        assert len(requests) == 2
        assert sum("X-Extra" in r.headers for r in requests) == 1
        assert pre.pages is not None
        assert pre.pages.used == 0
    pre.close()


def test_an_early_answer_that_is_not_final_is_dropped(server: FaultServer) -> None:
    url = server.add("/simple/demo/", PAGE, Fault(responses=[Response(503, {"Retry-After": "0"})]))
    pre = _early(server, "/simple/demo/")
    assert pre.pages is not None
    assert _requests_seen(server, "/simple/demo/", 1)
    with _session(pre) as session:
        assert _get(session, url) == PAGE  # the session's own request, after the early 503
    assert [r.status for r in server.requests_for("/simple/demo/")] == [503, 200]
    assert pre.pages.used == 0
    pre.close()


def test_an_early_page_over_https_is_verified_with_the_ca_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # what the session verifies with
    with FaultServer(tls=(cert, key)) as server:
        url = server.add("/simple/demo/", PAGE)
        pre = _early(server, "/simple/demo/", ca_bundle=str(cert))
        with _session(pre) as session:
            assert _get(session, url) == PAGE
        assert len(server.requests_for("/simple/demo/")) == 1
        assert pre.pages is not None
        assert pre.pages.used == 1
        pre.close()


def test_an_early_page_from_an_unverified_server_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with FaultServer(tls=(cert, key)) as server:
        url = server.add("/simple/demo/", PAGE)
        pre = _early(server, "/simple/demo/", ca_bundle=certifi.where())  # rejects it
        with _session(pre) as session:
            assert _get(session, url) == PAGE
        assert len(server.requests_for("/simple/demo/")) == 1  # only the session's
        assert pre.pages is not None
        assert pre.pages.used == 0
        pre.close()


def _plan_demo(server: FaultServer, tmp_path: Path) -> None:
    """Plan ``demo`` from ``server``, whose page for it lists no file (planning fails)."""
    page = Response(200, {"Content-Type": JSON_TYPE}, PAGE)
    server.add("/simple/demo/", b"", Fault(responses=[page, page]))
    options = PlanOptions(
        requirements=("demo",),
        index_url=f"{server.url}/simple/",
        output=tmp_path / "plan.json",
        isolated=True,
        no_cache=True,
        timeout=20.0,
    )
    with pytest.raises(FetchplanError, match="demo"):
        make_plan(options)


def test_a_plan_over_https_verifies_early_pages_as_requests_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with FaultServer(tls=(cert, key)) as server:
        _plan_demo(server, tmp_path)
        # One request: the early one, verified with the environment's bundle, was used.
        assert len(server.requests_for("/simple/demo/")) == 1


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_server_serving_one_connection_at_a_time_gets_the_early_pages_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls: bool
) -> None:
    # Such a server reads the first connection it accepts until that one closes: had it
    # accepted an idle preconnected socket first, the early page would wait behind it.
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    started: list[preconnect.Preconnector | None] = []
    real_start = preconnect.start

    def start(*args: Any, **kwargs: Any) -> preconnect.Preconnector | None:
        started.append(real_start(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(preconnect, "start", start)
    with FaultServer(tls=(cert, key) if tls else None, one_at_a_time=True) as server:
        _plan_demo(server, tmp_path)
        # The early request was answered and its answer used: the planner did not ask again.
        assert len(server.requests_for("/simple/demo/")) == 1
        [pre] = started
        assert pre is not None
        assert pre.pages is not None
        assert pre.pages.used == 1


def test_an_early_request_that_fails_in_any_way_leaves_the_request_to_the_planner(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    url = (
        f"http://127.0.0.1:{_port(listener)}/\u00edndice/demo/"  # not ASCII: http.client refuses it
    )
    pages = preconnect.EarlyPages([url], PAGE_HEADERS)
    pages.send(preconnect.Origin("127.0.0.1", _port(listener), timeout=5))
    assert pages.take(url, PAGE_HEADERS) is None
    assert pages.connected.is_set()
    for thread in threading.enumerate():
        if thread.name == "fetchplan-early":
            thread.join(10)
    assert failures == []


def _sources(index_url: str, **pip: Any) -> tuple[RequirementSet, Sources]:
    reqs = RequirementSet(
        requirements=tuple(
            parse_requirement_string(text)
            for text in ("Demo_Lib>=1", "demo-lib[x]", "other; python_version>'3'")
        )
    )  # fmt: skip
    options = PlanOptions(requirements=(), index_url=index_url, isolated=True)
    return reqs, find_sources(options, reqs.options, PipSettings(**pip))


def test_early_pages_are_the_named_requirements_on_the_first_index() -> None:
    reqs, sources = _sources("https://index.invalid/simple")
    assert early_pages(reqs, sources, 10) == (
        "https://index.invalid/simple/demo-lib/",
        "https://index.invalid/simple/other/",
    )
    assert early_pages(reqs, sources, 1) == ("https://index.invalid/simple/demo-lib/",)


@pytest.mark.parametrize(
    ("index_url", "pip"),
    [
        ("https://user:secret@index.invalid/simple", {}),
        ("https://index.invalid/simple", {"trusted_hosts": ("index.invalid",)}),
        ("https://index.invalid:8443/simple", {"trusted_hosts": ("index.invalid:8443",)}),
        ("https://index.invalid/simple", {"trusted_hosts": ("Index.Invalid",)}),
        ("https://index.invalid/simple", {"client_cert": "/dev/null"}),
        ("https://index.invalid/simple", {"find_links": ("https://u:p@index.invalid/links/",)}),
    ],
)
def test_no_page_is_requested_early_where_its_answer_could_not_be_used(
    index_url: str, pip: dict[str, Any]
) -> None:
    reqs, sources = _sources(index_url, **pip)
    assert early_pages(reqs, sources, 10) == ()


def test_no_page_is_requested_early_where_netrc_or_keyring_may_give_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine index.invalid login user password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    reqs, sources = _sources("https://index.invalid/simple")
    assert early_pages(reqs, sources, 10) == ()
    assert len(early_pages(reqs, sources, 10, use_netrc=False)) == 2  # netrc is not read then
    reqs, sources = _sources("https://other.invalid/simple")
    assert early_pages(reqs, sources, 10) == (
        "https://other.invalid/simple/demo-lib/",
        "https://other.invalid/simple/other/",
    )
    (tmp_path / "keyring.py").write_text("")  # a keyring library is installed
    monkeypatch.syspath_prepend(str(tmp_path))
    assert early_pages(reqs, sources, 10) == ()


def test_the_plan_takes_the_first_pages_from_early_requests(
    index_server: MakeIndexServer, tmp_path: Path
) -> None:
    server = index_server([Dist("demo", "1.0", requires=["dep"]), Dist("dep", "1.0")])
    result = make_plan(
        PlanOptions(
            requirements=("demo",),
            index_url=server.index_url,
            output=tmp_path / "plan.json",
            isolated=True,
            no_cache=True,
            timeout=10.0,
        )
    )
    assert sorted(a.name for a in result.plan.artifacts) == ["demo", "dep"]
    assert len(server.requests("/simple/demo/")) == 1
    assert len(server.requests("/simple/dep/")) == 1
    threads = {
        r.url.rsplit("/", 2)[-2]: r.thread for r in result.timings.requests if r.url.endswith("/")
    }
    assert threads["demo"] == "fetchplan-early"
    assert threads["dep"] != "fetchplan-early"
