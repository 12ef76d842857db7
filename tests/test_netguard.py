"""The suite's own guard: sockets of the test process reach only loopback."""

from __future__ import annotations

import socket

import pytest

from tests.support.netguard import NonLoopbackConnection, guarded, is_allowed


@pytest.mark.parametrize(
    ("family", "address", "allowed"),
    [
        (socket.AF_INET, ("127.0.0.1", 80), True),
        (socket.AF_INET, ("127.8.9.10", 80), True),
        (socket.AF_INET6, ("::1", 80, 0, 0), True),
        (socket.AF_INET6, ("::ffff:127.0.0.1", 80, 0, 0), True),
        (socket.AF_INET, ("192.0.2.1", 80), False),
        (socket.AF_INET, ("10.0.0.1", 443), False),
        (socket.AF_INET6, ("2001:db8::1", 443, 0, 0), False),
        (socket.AF_INET, ("example.invalid", 80), False),
        (socket.AF_UNIX, "/tmp/some.sock", True),
    ],
)
def test_is_allowed(family: int, address: object, allowed: bool) -> None:
    assert is_allowed(family, address) is allowed


def test_a_connection_outside_loopback_is_refused_before_the_system_call() -> None:
    calls: list[object] = []

    def original(sock: socket.socket, address: object) -> None:
        calls.append(address)

    connect = guarded(original)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(NonLoopbackConnection, match=r"192\.0\.2\.1"):
            connect(sock, ("192.0.2.1", 9))
        connect(sock, ("127.0.0.1", 9))
    assert calls == [("127.0.0.1", 9)]


def test_the_suite_runs_guarded() -> None:
    assert socket.socket.connect.__qualname__ == guarded(socket.socket.connect).__qualname__


def test_loopback_still_connects() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            conn, _ = server.accept()
            conn.close()
