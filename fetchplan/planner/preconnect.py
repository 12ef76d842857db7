"""TCP connections to the index, opened while the rest of the planner is still being imported.

Python takes about 0.15 s to import what planning needs once the index is known (requests,
urllib3, packaging, resolvelib, the planner itself), and the first round of requests then
waits a round trip each for a TCP handshake. :func:`start` opens the connections in a
background thread as soon as the index is known, with non-blocking sockets and one selector
(little CPU while the imports run), and the planner's connection pools take them
(:meth:`Preconnector.take`) instead of dialling.

Only the TCP handshake is done early: no byte is sent. TLS, and with it every certificate
check, still happens in urllib3 as for any new connection. The host is the one the plan's
first index names, which the first request would connect to anyway. When a proxy applies to
that URL nothing is opened, as the pools would dial the proxy instead. A connection the
server closed meanwhile is never handed out.

An idle connection can hold a server that serves one connection at a time (pypiserver on
wsgiref does): it reads the first connection it accepted until a request comes. So sockets
are handed out oldest first, in the order the server accepts them, and those not taken
within ``max_idle`` seconds of being opened are closed, as are all at
:meth:`Preconnector.close`: only the first round of requests uses them.
"""

from __future__ import annotations

import errno
import logging
import select
import selectors
import socket
import threading
import time
import urllib.request
from urllib.parse import urlsplit

__all__ = ["Preconnector", "start"]

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}
_CONNECTING = frozenset({0, errno.EINPROGRESS, errno.EWOULDBLOCK})


class Preconnector:
    """Connected sockets by ``(host, port)``, filled by :meth:`open`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: dict[tuple[str, int], list[socket.socket]] = {}
        self._closed = threading.Event()
        self.taken = 0
        """How many sockets :meth:`take` has handed out."""

    def run(self, host: str, port: int, count: int, timeout: float, max_idle: float) -> None:
        """:meth:`open`, then :meth:`close` ``max_idle`` seconds after it started (or sooner,
        when closed meanwhile). :func:`start` runs this in a daemon thread."""
        started = time.monotonic()
        self.open(host, port, count, timeout)
        self._closed.wait(max(0.0, started + max_idle - time.monotonic()))
        self.close()

    def open(self, host: str, port: int, count: int, timeout: float) -> None:
        """Open up to ``count`` connections to ``host`` ``port``; blocks until they are made
        or ``timeout`` seconds pass."""
        try:
            family, kind, proto, _name, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )[0]
        except OSError as exc:
            log.debug("preconnect %s:%d: %s", host, port, exc)
            return
        pending: dict[int, socket.socket] = {}
        with selectors.DefaultSelector() as selector:
            for _ in range(count):
                sock = socket.socket(family, kind, proto)
                sock.setblocking(False)
                if sock.connect_ex(address) not in _CONNECTING:
                    sock.close()
                    break
                selector.register(sock, selectors.EVENT_WRITE)
                pending[sock.fileno()] = sock
            deadline = time.monotonic() + timeout
            while pending and (left := deadline - time.monotonic()) > 0:
                for key, _events in selector.select(left):
                    sock = pending.pop(key.fd)
                    selector.unregister(sock)
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        self._add((host, port), sock)
                    else:
                        sock.close()
        for sock in pending.values():
            sock.close()

    def _add(self, key: tuple[str, int], sock: socket.socket) -> None:
        with self._lock:
            if not self._closed.is_set():
                self._ready.setdefault(key, []).append(sock)
                return
        sock.close()

    def take(self, host: str, port: int) -> socket.socket | None:
        """The oldest connected socket to ``host`` ``port``, in blocking mode, or None."""
        while True:
            with self._lock:
                ready = self._ready.get((host, port))
                if not ready:
                    return None
                sock = ready.pop(0)
            # Readable before any request was sent: the server closed it (or sent junk).
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                sock.close()
                continue
            sock.setblocking(True)
            with self._lock:
                self.taken += 1
            return sock

    def close(self) -> None:
        """Close every socket not taken; any still connecting is closed when it connects."""
        with self._lock:
            self._closed.set()
            ready, self._ready = self._ready, {}
        for socks in ready.values():
            for sock in socks:
                sock.close()


def start(
    url: str, count: int, *, timeout: float = 10.0, max_idle: float = 2.0
) -> Preconnector | None:
    """Open ``count`` connections to the host of the http(s) ``url`` in a daemon thread, and
    close those not taken after ``max_idle`` seconds.

    None (and nothing opened) for other schemes, or when a proxy applies to ``url``.
    """
    parts = urlsplit(url)
    host = parts.hostname
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or port is None or not host or count < 1:
        return None
    proxies = urllib.request.getproxies()
    if (proxies.get(parts.scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host):
        return None
    preconnector = Preconnector()
    threading.Thread(
        target=preconnector.run,
        args=(host, port, count, timeout, max_idle),
        name="fetchplan-preconnect",
        daemon=True,
    ).start()
    return preconnector
