"""Connections to the index opened during the planner's imports, and the session taking them."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from fetchplan.auth import CredentialStore
from fetchplan.planner import preconnect
from fetchplan.planner.http import HttpPolicy, make_session
from tests.conftest import MakeIndexServer
from tests.support.wheels import Dist


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
