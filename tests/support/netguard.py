"""Refuse, inside the test process, every connection to anything but loopback.

The suite's servers all listen on loopback; a connection elsewhere means a test (or the code
under test) reached for the network, which a hermetic test never does. The guard wraps
``socket.socket.connect`` and ``connect_ex``, the calls every client in the process ends in
(requests, urllib3, http.client, the planner's early pages). Subprocesses that tests start are
not covered: they get ``NO_PROXY`` and pip settings that point only at loopback servers.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class NonLoopbackConnection(OSError):
    """A test tried to connect to an address outside the loopback range."""


def is_allowed(family: int, address: object) -> bool:
    """Whether a ``connect`` to *address* of *family* stays on this machine."""
    if family not in (socket.AF_INET, socket.AF_INET6):
        return True  # AF_UNIX and socketpairs never leave the machine
    if not isinstance(address, tuple) or not address:
        return False
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
    except ValueError:
        return False  # a host name: connect() would resolve it outside our view
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def guarded(original: Callable[..., Any]) -> Callable[..., Any]:
    """*original* (a socket's connect), refusing addresses outside loopback before calling it."""

    def connect(self: socket.socket, address: Any) -> Any:
        if not is_allowed(self.family, address):
            raise NonLoopbackConnection(f"tests reach only loopback, not {address!r}")
        return original(self, address)

    return connect


@contextmanager
def loopback_only() -> Iterator[None]:
    """Within the block, every socket of this process connects only to loopback."""
    saved = socket.socket.connect, socket.socket.connect_ex
    socket.socket.connect = guarded(saved[0])  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded(saved[1])  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex = saved  # type: ignore[method-assign]
