"""Deadlines no trickle can extend: sockets shut down when their request runs out of time.

A socket timeout bounds each read, not a request: a server that sends its headers (or body) one
byte every two seconds never trips a 30-second read timeout, and holds the request for as long
as it likes. :func:`deadline` sets, for the requests the calling thread makes within it, a
moment by which the response headers must have arrived and one by which the request must be
done; the connections of :mod:`fetchplan._connections` register their socket (:func:`watch`)
with one watchdog thread, which shuts the socket down when its moment passes. The blocked
read then fails as a lost connection would, and the caller's error handling takes over.

Used by the planner's HTTP session and the executor's; nothing here imports either, nor
urllib3 (the preconnector's threads use it while the main thread is importing urllib3, and
two threads importing one package at once see it half made).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["deadline", "expired", "watch"]


class _Expiry:
    """Set once a socket of its scope was shut down for taking too long."""

    __slots__ = ("expired",)

    def __init__(self) -> None:
        self.expired = False


@dataclass(order=True)
class _Entry:
    when: float
    order: int
    sock: socket.socket | None = field(compare=False)
    expiry: _Expiry | None = field(compare=False, default=None)


class _Watchdog:
    """One daemon thread that shuts down every socket whose moment has passed."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[_Entry] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, when: float, expiry: _Expiry) -> _Entry:
        entry = _Entry(when, next(self._order), sock, expiry)
        with self._lock:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="fetchplan-deadlines", daemon=True
                )
                self._thread.start()
            self._lock.notify()
        return entry

    def cancel(self, entry: _Entry) -> None:
        with self._lock:
            entry.sock = None  # left in the heap; skipped when its moment comes

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._heap or self._heap[0].when > time.monotonic():
                    timeout = None if not self._heap else self._heap[0].when - time.monotonic()
                    self._lock.wait(timeout)
                entry = heapq.heappop(self._heap)
                sock, entry.sock = entry.sock, None
            if sock is not None:
                if entry.expiry is not None:
                    entry.expiry.expired = True
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()


class _Scope(threading.local):
    headers_by: float | None = None
    done_by: float | None = None
    entries: list[_Entry]
    expiry: _Expiry

    def __init__(self) -> None:
        self.entries = []
        self.expiry = _Expiry()


_SCOPE = _Scope()


@contextlib.contextmanager
def deadline(headers: float, total: float) -> Iterator[None]:
    """For requests this thread makes within: their response headers must arrive within
    ``headers`` seconds of each request being sent, and the request be done within ``total``
    seconds of entering. Once one of its sockets was shut down for being late, every later
    try within (a retry of urllib3's) is shut down at once: a trickle is not tried again."""
    outer = (_SCOPE.headers_by, _SCOPE.done_by, _SCOPE.entries, _SCOPE.expiry)
    _SCOPE.headers_by = headers
    _SCOPE.done_by = time.monotonic() + total
    _SCOPE.entries = []
    _SCOPE.expiry = _Expiry()
    try:
        yield
    finally:
        for entry in _SCOPE.entries:
            _WATCHDOG.cancel(entry)
        _SCOPE.headers_by, _SCOPE.done_by, _SCOPE.entries, _SCOPE.expiry = outer


def expired() -> bool:
    """Whether a socket of the calling thread's current :func:`deadline` was shut down late."""
    return _SCOPE.expiry.expired


def watch(sock: socket.socket | None, *, headers: bool) -> None:
    """Put ``sock`` under the calling thread's deadline, if it has one: the headers' moment
    (``headers``) or the request's. Replaces any earlier moment of this socket in the scope."""
    if sock is None or _SCOPE.done_by is None:
        return
    when = _SCOPE.done_by
    if _SCOPE.expiry.expired:
        when = time.monotonic()
    elif headers and _SCOPE.headers_by is not None:
        when = min(when, time.monotonic() + _SCOPE.headers_by)
    for entry in _SCOPE.entries:
        if entry.sock is sock:
            _WATCHDOG.cancel(entry)
    _SCOPE.entries = [e for e in _SCOPE.entries if e.sock is not None]
    _SCOPE.entries.append(_WATCHDOG.watch(sock, when, _SCOPE.expiry))
