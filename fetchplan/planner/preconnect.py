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

**Pages requested early.** The planner's first requests are the project pages of the
requirements it was given, and every later request waits for them. Given those pages' URLs,
:func:`start` also sends them (:class:`EarlyPages`), each from a thread of its own with the
standard library's ``http.client`` on a connection of its own, so the answers are on their way
or in by the time the planner asks; :meth:`Preconnector.answer` hands each to the planner's
session once, in place of the request it would send. Their connections are made before the
idle ones, so that a server serving one connection at a time reaches every early request before
it reads from an idle socket. An answer is used only where it is what that request would get:

* the same URL and exactly the same headers (:data:`~fetchplan.planner.sources.SESSION_HEADERS`
  and the page's ``Accept``): never where credentials apply, as early requests carry none (the
  caller sends none early where credentials may apply);
* over https, the certificate verified against the CA bundle requests would use
  (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, pip's ``cert``, else certifi's), with the host
  name checked; the caller sends no page early to a host of ``--trusted-host`` (not verified)
  or with a client certificate;
* a final answer (200, 404 or 410, or 304 to a page sent with the validators of a cached copy)
  read whole, its body in no encoding but gzip or deflate.

Anything else (an error, a redirect, a 5xx, a timeout) is dropped, and the planner sends the
request itself, with its retries and its error messages.
"""

from __future__ import annotations

import errno
import http.client
import logging
import select
import selectors
import socket
import ssl
import threading
import time
import urllib.request
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fetchplan._deadline import deadline, watch
from fetchplan._limits import MAX_PAGE_BYTES
from fetchplan._urls import redact
from fetchplan.planner.timings import Timings

__all__ = ["EarlyAnswer", "EarlyPages", "Origin", "Preconnector", "request_target", "start"]

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}
_CONNECTING = frozenset({0, errno.EINPROGRESS, errno.EWOULDBLOCK})
_FINAL = frozenset({200, 404, 410})


@dataclass(frozen=True, slots=True)
class EarlyAnswer:
    """A final answer to a page requested early, its body decoded."""

    url: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    content: bytes


class _Request:
    __slots__ = ("answer", "connecting", "done")

    def __init__(self) -> None:
        self.answer: EarlyAnswer | None = None
        self.connecting = True
        self.done = threading.Event()


def request_target(url: str) -> str:
    """What an HTTP/1.1 request line names for ``url``: its path and query."""
    parts = urlsplit(url)
    return f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"


def _header_key(headers: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset((name.lower(), value) for name, value in headers.items())


def _inflate(body: bytes, wbits: int, limit: int) -> bytes | None:
    """``body`` decompressed, or None past ``limit`` bytes (a body that decodes to gigabytes)."""
    decoder = zlib.decompressobj(wbits)
    data = decoder.decompress(body, limit + 1)
    if len(data) > limit or decoder.unconsumed_tail:
        return None
    return data + decoder.flush()


def _decoded(body: bytes, encoding: str, limit: int = MAX_PAGE_BYTES) -> bytes | None:
    """``body`` without its Content-Encoding, or None for one urllib3 may decode otherwise and
    for one larger than ``limit`` decoded (the planner then asks itself, and refuses it)."""
    if len(body) > limit:
        return None
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, limit)
    if encoding == "deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, limit)
        except zlib.error:  # raw deflate, without the zlib header, as some servers send it
            return _inflate(body, -zlib.MAX_WBITS, limit)
    return None


class Origin:
    """Where the early pages go: opens their connections, TCP first, then TLS for https."""

    def __init__(
        self, host: str, port: int, timeout: float, context: ssl.SSLContext | None = None
    ) -> None:
        """``context``: verify and encrypt with it (https); None for plain http."""
        self.host = host
        self.port = port
        self.timeout = timeout
        self.context = context

    def tcp(self) -> socket.socket:
        """A TCP connection to the origin, set up as ``http.client`` sets up its own."""
        sock = socket.create_connection((self.host, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def connection(self, sock: socket.socket) -> http.client.HTTPConnection:
        """An HTTP connection over ``sock`` (a connection of :meth:`tcp`), the TLS handshake
        done and the certificate verified for https; closes ``sock`` on failure."""
        if self.context is None:
            plain = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            plain.sock = sock
            return plain
        secure = http.client.HTTPSConnection(
            self.host, self.port, timeout=self.timeout, context=self.context
        )
        try:
            secure.sock = self.context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        return secure


class EarlyPages:
    """Pages requested before the planner's HTTP session exists (see the module docstring)."""

    def __init__(
        self,
        urls: Sequence[str],
        headers: Mapping[str, str],
        *,
        timings: Timings | None = None,
        conditions: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """Pages ``urls`` (of one origin), to be requested with ``headers`` by :meth:`send`,
        and with ``conditions[url]`` for a page the planner holds a copy of (its validators:
        the planner sends the same); :meth:`take` waits for those asked for before they are
        sent."""
        self._headers = dict(headers)
        self._conditions = {url: dict(extra) for url, extra in (conditions or {}).items()}
        self._timings = timings
        self._lock = threading.Lock()
        self._requests = {url: _Request() for url in urls}
        self._to_send = tuple(self._requests.items())
        self._connecting = len(self._to_send)
        self.connected = threading.Event()
        """Set once every page's connection is made or has failed (see :class:`Preconnector`)."""
        if not self._connecting:
            self.connected.set()
        self.used = 0
        """How many answers :meth:`take` has handed out."""

    def send(self, origin: Origin | None) -> None:
        """GET each page on a connection of its own to ``origin``, each in a daemon thread;
        with None, give up on them all."""
        # Those taken meanwhile too: take() waits for them.
        for url, request in self._to_send:
            if origin is None:
                self._finish(request)
                continue
            try:
                threading.Thread(
                    target=self._get,
                    args=(url, request, origin),
                    name="fetchplan-early",
                    daemon=True,
                ).start()
            except RuntimeError:  # no thread to be had: the planner sends it itself
                self._finish(request)

    def take(self, url: str, headers: Mapping[str, str]) -> EarlyAnswer | None:
        """The answer to ``GET url`` with ``headers``, once, if it was requested early with
        the same headers and got a final answer (waiting for it); else None."""
        with self._lock:
            request = self._requests.pop(url, None)
        if request is None or _header_key(headers) != _header_key(self._headers_for(url)):
            return None
        request.done.wait()
        if request.answer is not None:
            with self._lock:
                self.used += 1
        return request.answer

    def close(self) -> None:
        """Drop every answer not taken (requests still running end on their own)."""
        with self._lock:
            self._requests.clear()

    def _headers_for(self, url: str) -> dict[str, str]:
        extra = self._conditions.get(url)
        return self._headers if not extra else {**self._headers, **extra}

    def _connected(self, request: _Request) -> None:
        with self._lock:
            if not request.connecting:
                return
            request.connecting = False
            self._connecting -= 1
            if self._connecting == 0:
                self.connected.set()

    def _finish(self, request: _Request) -> None:
        self._connected(request)
        request.done.set()

    def _get(self, url: str, request: _Request, origin: Origin) -> None:
        try:
            request.answer = self._fetch(url, request, origin)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the planner asks itself
            log.debug("early GET %s: %s: %s", redact(url), type(exc).__name__, redact(str(exc)))
        finally:
            self._finish(request)

    def _fetch(self, url: str, request: _Request, origin: Origin) -> EarlyAnswer | None:
        target = request_target(url)
        timings = self._timings
        started = timings.now() if timings is not None else 0.0
        status: int | None = None
        received = 0
        connection: http.client.HTTPConnection | None = None
        # The whole answer within the timeout, however slowly it trickles in: the planner
        # waits for it (and then asks itself).
        with deadline(headers=origin.timeout, total=origin.timeout):
            try:
                try:
                    sock = origin.tcp()
                finally:
                    self._connected(request)
                connection = origin.connection(sock)
                watch(connection.sock, headers=False)
                connection.request("GET", target, headers=self._headers_for(url))
                response = connection.getresponse()
                status = response.status
                body = response.read(MAX_PAGE_BYTES + 1)
                received = len(body)
            finally:
                if connection is not None:
                    connection.close()
                if timings is not None:
                    with timings.phase("index"):
                        timings.record_request("GET", url, status, started, received)
        if status not in _FINAL and not (status == 304 and url in self._conditions):
            return None
        encoding = (response.getheader("Content-Encoding") or "").strip().lower()
        content = b"" if status == 304 else _decoded(body, encoding)
        if content is None:
            return None
        return EarlyAnswer(
            url=url,
            status=status,
            reason=response.reason,
            headers=tuple(response.getheaders()),
            content=content,
        )


class Preconnector:
    """Connected sockets by ``(host, port)``, filled by :meth:`open`."""

    def __init__(self, pages: EarlyPages | None = None) -> None:
        self._lock = threading.Lock()
        self._ready: dict[tuple[str, int], list[socket.socket]] = {}
        self._closed = threading.Event()
        self.taken = 0
        """How many sockets :meth:`take` has handed out."""
        self.pages = pages
        """The pages requested early, if any."""

    def answer(self, url: str, headers: Mapping[str, str]) -> EarlyAnswer | None:
        """The early answer to ``GET url`` with ``headers`` (:meth:`EarlyPages.take`)."""
        return None if self.pages is None else self.pages.take(url, headers)

    def run(self, host: str, port: int, count: int, timeout: float, max_idle: float) -> None:
        """:meth:`open`, then :meth:`close` ``max_idle`` seconds after it started (or sooner,
        when closed meanwhile). :func:`start` runs this in a daemon thread.

        With pages requested early, their connections are made first, so that a server which
        serves one connection at a time reaches them before an idle one, which it would read
        from until the planner takes it. Connections still being made at ``max_idle`` are
        given up.
        """
        started = time.monotonic()
        if self.pages is not None:
            self.pages.connected.wait(max_idle)
        left = started + max_idle - time.monotonic()
        if left > 0 and not self._closed.is_set():
            self.open(host, port, count, min(timeout, left))
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
        try:
            with selectors.DefaultSelector() as selector:
                for _ in range(count):
                    sock = socket.socket(family, kind, proto)
                    pending[sock.fileno()] = sock
                    sock.setblocking(False)
                    if sock.connect_ex(address) not in _CONNECTING:
                        del pending[sock.fileno()]
                        sock.close()
                        break
                    selector.register(sock, selectors.EVENT_WRITE)
                deadline = time.monotonic() + timeout
                while pending and (left := deadline - time.monotonic()) > 0:
                    for key, _events in selector.select(left):
                        sock = pending.pop(key.fd)
                        selector.unregister(sock)
                        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                            self._add((host, port), sock)
                        else:
                            sock.close()
        except OSError as exc:  # out of descriptors, say: the planner dials itself
            log.debug("preconnect %s:%d: %s", host, port, exc)
        finally:
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
        """Close every socket not taken (any still connecting is closed when it connects) and
        drop the early answers not taken."""
        if self.pages is not None:
            self.pages.close()
        with self._lock:
            self._closed.set()
            ready, self._ready = self._ready, {}
        for socks in ready.values():
            for sock in socks:
                sock.close()


def start(
    url: str,
    count: int,
    *,
    timeout: float = 10.0,
    max_idle: float = 2.0,
    pages: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
    conditions: Mapping[str, Mapping[str, str]] | None = None,
    ca_bundle: str | None = None,
    timings: Timings | None = None,
) -> Preconnector | None:
    """Open ``count`` connections to the host of the http(s) ``url`` in a daemon thread, and
    close those not taken after ``max_idle`` seconds; GET ``pages`` (URLs on that origin) with
    ``headers`` (and ``conditions[page]``, see :class:`EarlyPages`), verifying https against
    ``ca_bundle`` (a file or directory; default certifi's).

    None (and nothing opened or sent) for other schemes, or when a proxy applies to ``url``.
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
    early = None
    if pages and headers is not None:
        early = EarlyPages(pages, headers, timings=timings, conditions=conditions)
        args = (early, parts.scheme == "https", host, port, timeout, ca_bundle)
        if not _daemon(_send_pages, args, "fetchplan-early"):
            early = None
    preconnector = Preconnector(early)
    _daemon(preconnector.run, (host, port, count, timeout, max_idle), "fetchplan-preconnect")
    return preconnector


def _daemon(target: Callable[..., None], args: tuple[object, ...], name: str) -> bool:
    """Run ``target(*args)`` in a daemon thread; False when no thread could be started."""
    try:
        threading.Thread(target=target, args=args, name=name, daemon=True).start()
    except RuntimeError as exc:  # "can't start new thread": the planner does without
        log.debug("%s: %s", name, exc)
        return False
    return True


def _send_pages(  # noqa: PLR0917 - a thread's arguments
    early: EarlyPages,
    https: bool,
    host: str,
    port: int,
    timeout: float,
    ca_bundle: str | None,
) -> None:
    context = None
    if https:
        try:
            context = tls_context(ca_bundle)
        except Exception as exc:  # noqa: BLE001 - no early pages; the planner asks itself
            log.debug("early pages: no TLS context: %s", exc)
            early.send(None)
            return
    early.send(Origin(host, port, timeout, context))


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """A client context that verifies certificates and host names against ``ca_bundle`` (a
    file, or a directory of hashed certificates) or certifi's bundle, and nothing else, as
    requests does."""
    if ca_bundle is None:
        import certifi

        ca_bundle = certifi.where()
    if Path(ca_bundle).is_dir():
        return ssl.create_default_context(capath=ca_bundle)
    return ssl.create_default_context(cafile=ca_bundle)
