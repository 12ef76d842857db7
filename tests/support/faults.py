"""An in-process HTTP/1.1 file server with fault switches, for the executor's tests.

``FaultServer`` runs a ``ThreadingHTTPServer`` on a free loopback port in a thread. Files are
added with :meth:`FaultServer.add` (content in memory); each path has a :class:`Fault` whose
switches may change mid-test. The server honours ``Range: bytes=N-`` and ``If-Range`` (strong
ETag or exact Last-Modified) like a real one, keeps connections alive, and counts every body
byte it sends, overall and per path, so tests can assert how much the client really fetched.
"""

from __future__ import annotations

import gzip
import hashlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName

__all__ = [
    "Fault",
    "FaultServer",
    "PlanFile",
    "Request",
    "Response",
    "self_signed_certificate",
    "write_plan",
]

_LAST_MODIFIED = formatdate(time.time() - 3600, usegmt=True)


@dataclass
class Response:
    """A canned answer: status and headers, and a body (default: none)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Fault:
    """Behaviour switches of one path. ``faulty_requests`` limits the faults (not
    ``responses``) to that many first requests; None means every request."""

    faulty_requests: int | None = None
    responses: list[Response] = field(default_factory=list)
    """Answered first, one per request, in order (e.g. a 503 with Retry-After, then a 429)."""
    status: int | None = None
    """Answer every request with this status and no body (e.g. 404)."""
    reset_after: int | None = None
    """Send this many body bytes, then reset the connection (RST)."""
    close_after: int | None = None
    """Send this many body bytes, then close cleanly, short of Content-Length."""
    extra_bytes: int = 0
    """Append this many bytes beyond the file (Content-Length says so too)."""
    no_length: bool = False
    """Send no Content-Length; the body ends when the connection closes."""
    ignore_range: bool = False
    """Answer Range requests with 200 and the whole file."""
    ignore_if_range: bool = False
    """Serve the range even when If-Range no longer matches."""
    range_start_shift: int = 0
    """Send a 206 whose Content-Range (and body) starts this many bytes off."""
    change_etag: bool = False
    """A new ETag on every request (the file is 're-deployed' each time)."""
    weak_etag: bool = False
    """Only a weak ETag, no Last-Modified."""
    no_validators: bool = False
    drip_interval: float | None = None
    """Send the body one byte at a time, sleeping this long between bytes."""
    rate: int | None = None
    """Throttle the body to this many bytes per second."""
    gzip: bool = False
    """Compress the body on the fly with Content-Encoding: gzip, ignoring Accept-Encoding."""
    content_encoding: str | None = None
    """Label the file's bytes, sent as they are, with this Content-Encoding (a file that is
    already compressed: an endless gzip body, say)."""
    content_type: str | None = None
    """Send this Content-Type instead of application/octet-stream."""
    header_drip: float | None = None
    gate: threading.Event | None = None
    """When set, a body waits (at most 60 s) until the event is set: a transfer held open for
    exactly as long as a test needs, instead of a rate that races the test's other steps."""
    """Send the status line and headers one byte at a time, sleeping this long between bytes."""
    body: bytes | None = None
    """Serve these bytes instead of the file (wrong content with status 200)."""
    redirect_to: str | None = None
    """Answer with 302 to this URL."""
    redirect_status: int = 302
    require_auth: tuple[str, str] | None = None
    """Answer 401 unless Basic credentials match (applies to every request)."""


@dataclass
class Request:
    """One request, logged when it arrives; ``status`` and ``body_bytes`` fill in as it is
    answered (``status`` stays None if the client went away before the headers)."""

    method: str
    path: str
    headers: dict[str, str]
    peer_port: int
    at: float
    """``time.time()`` when the request arrived."""
    status: int | None = None
    body_bytes: int = 0
    finished: bool = False
    """The handler is done with it (all its bytes are counted)."""


@dataclass
class _File:
    content: bytes
    etag_version: int = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: FaultServer


class _OneAtATime(HTTPServer):
    """Serves one connection at a time, as wsgiref's server does: a connection accepted is read
    until its request comes (the HTTP/1.0 handler then answers and closes it)."""

    allow_reuse_address = True
    owner: FaultServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server | _OneAtATime

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except OSError:  # ssl.SSLError included: the client refused the certificate
                return
        super().handle()

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        request = Request(
            method=self.command,
            path=path,
            headers=dict(self.headers.items()),
            peer_port=self.client_address[1],
            at=time.time(),
        )
        owner._log(request)
        try:
            self._answer(owner, path, request, head)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            self.close_connection = True
        finally:
            request.finished = True

    _header_drip: float | None = None

    def flush_headers(self) -> None:
        drip, self._header_drip = self._header_drip, None
        buffered = getattr(self, "_headers_buffer", None)
        if drip is None or not buffered:
            super().flush_headers()
            return
        data = b"".join(buffered)
        buffered.clear()
        for i in range(len(data)):
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()
            time.sleep(drip)

    def _simple(self, status: int, headers: dict[str, str], body: bytes, request: Request) -> int:
        request.status = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self._write(body, request, None)
        return status

    def _write(self, data: bytes, request: Request, fault: Fault | None) -> None:
        owner = self.server.owner
        if fault is not None and fault.gate is not None:
            fault.gate.wait(timeout=60)
        if fault is not None and fault.drip_interval is not None:
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                owner._count(request, 1)
                time.sleep(fault.drip_interval)
            return
        if fault is not None and fault.rate is not None:
            step = max(1, fault.rate // 20)
            start = time.monotonic()
            done = 0
            for i in range(0, len(data), step):
                piece = data[i : i + step]
                self.wfile.write(piece)
                owner._count(request, len(piece))
                done += len(piece)
                ahead = done / fault.rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
            return
        view = memoryview(data)
        for i in range(0, len(data), 256 * 1024):
            part = view[i : i + 256 * 1024]
            self.wfile.write(part)
            owner._count(request, len(part))

    def _answer(self, owner: FaultServer, path: str, request: Request, head: bool) -> int:
        headers = request.headers
        with owner._lock:
            entry = owner._files.get(path)
            fault = owner.faults.setdefault(path, Fault())
            count = owner._request_counts.get(path, 0) + 1
            owner._request_counts[path] = count
            canned = fault.responses.pop(0) if fault.responses else None
            if entry is not None and fault.change_etag:
                entry.etag_version += 1
        if canned is not None:
            return self._simple(canned.status, canned.headers, canned.body, request)
        if fault.require_auth is not None:
            import base64

            expected = "Basic " + base64.b64encode(
                f"{fault.require_auth[0]}:{fault.require_auth[1]}".encode()
            ).decode("ascii")
            if headers.get("Authorization") != expected:
                return self._simple(401, {"WWW-Authenticate": 'Basic realm="t"'}, b"", request)
        active = fault.faulty_requests is None or count <= fault.faulty_requests
        if not active:
            fault = Fault()
        if fault.redirect_to is not None:
            return self._simple(
                fault.redirect_status, {"Location": fault.redirect_to}, b"", request
            )
        if fault.status is not None:
            return self._simple(fault.status, {}, b"", request)
        if entry is None:
            return self._simple(404, {}, b"not found", request)
        content = entry.content if fault.body is None else fault.body
        digest = hashlib.sha256(entry.content).hexdigest()[:16]
        etag = f'"{digest}-{entry.etag_version}"'
        validators: dict[str, str] = {}
        if fault.weak_etag:
            validators["ETag"] = f"W/{etag}"
        elif not fault.no_validators:
            validators["ETag"] = etag
            validators["Last-Modified"] = _LAST_MODIFIED
        body = content + b"\0" * fault.extra_bytes
        status = 200
        extra: dict[str, str] = {}
        wanted = headers.get("Range")
        if_range = headers.get("If-Range")
        range_ok = wanted is not None and not fault.ignore_range and not fault.gzip
        if range_ok and if_range is not None and not fault.ignore_if_range:
            range_ok = if_range in (etag, _LAST_MODIFIED) and "ETag" in validators
        if range_ok and wanted is not None and wanted.startswith("bytes="):
            first, _, last = wanted[len("bytes=") :].partition("-")
            if first.isdigit():
                start = int(first)
                end = int(last) if last.isdigit() else len(body) - 1
                if start >= len(body):
                    return self._simple(
                        416, {"Content-Range": f"bytes */{len(body)}"}, b"", request
                    )
                shifted = min(max(start + fault.range_start_shift, 0), len(body) - 1)
                extra["Content-Range"] = f"bytes {shifted}-{end}/{len(body)}"
                body = body[shifted : end + 1]
                status = 206
        if fault.gzip:
            body = gzip.compress(body)
            extra["Content-Encoding"] = "gzip"
        if fault.content_encoding is not None:
            extra["Content-Encoding"] = fault.content_encoding
        self._header_drip = fault.header_drip
        request.status = status
        self.send_response(status)
        for key, value in {**validators, **extra}.items():
            self.send_header(key, value)
        self.send_header("Content-Type", fault.content_type or "application/octet-stream")
        if fault.no_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return status
        cut = None
        if fault.reset_after is not None:
            cut = fault.reset_after
        elif fault.close_after is not None:
            cut = fault.close_after
        if cut is not None and cut < len(body):
            self._write(body[:cut], request, fault)
            self.wfile.flush()
            if fault.reset_after is not None:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            else:
                self.connection.shutdown(socket.SHUT_WR)
            self.close_connection = True
            return status
        self._write(body, request, fault)
        return status


class _Http10Handler(_Handler):
    protocol_version = "HTTP/1.0"


class FaultServer:
    """The server; use as a context manager or call :meth:`close`."""

    def __init__(
        self, tls: tuple[Path, Path] | None = None, *, one_at_a_time: bool = False
    ) -> None:
        """``tls``: (certificate, key) PEM files to serve https instead of http;
        ``one_at_a_time``: serve connections one after the other (HTTP/1.0, each closed after
        its answer), as single-threaded servers do, instead of each in a thread."""
        self._lock = threading.Lock()
        self._files: dict[str, _File] = {}
        self.faults: dict[str, Fault] = {}
        self._request_counts: dict[str, int] = {}
        self.requests: list[Request] = []
        self._bytes: dict[str, int] = {}
        self._httpd: _Server | _OneAtATime = (
            _OneAtATime(("127.0.0.1", 0), _Http10Handler)
            if one_at_a_time
            else _Server(("127.0.0.1", 0), _Handler)
        )
        self._httpd.owner = self
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            # The handshake happens in the handler's thread, as a real server does it: a client
            # that connects and sends nothing yet must not hold up the accept loop.
            self._httpd.socket = context.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
            self.scheme = "https"
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def add(self, path: str, content: bytes, fault: Fault | None = None) -> str:
        """Serve ``content`` at ``path`` (``/files/x.whl``); return its URL."""
        with self._lock:
            self._files[path] = _File(content)
            if fault is not None:
                self.faults[path] = fault
        return self.url + path

    def fault(self, path: str) -> Fault:
        with self._lock:
            return self.faults.setdefault(path, Fault())

    def bytes_sent(self, path: str | None = None) -> int:
        """Body bytes written to clients, for ``path`` or overall."""
        with self._lock:
            if path is None:
                return sum(self._bytes.values())
            return self._bytes.get(path, 0)

    def requests_for(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every request so far is finished (a client that went away may leave a
        handler writing into a dead socket for a moment)."""
        deadline = time.monotonic() + timeout
        while any(not r.finished for r in list(self.requests)):
            if time.monotonic() > deadline:
                raise TimeoutError("server requests still running")
            time.sleep(0.01)

    def reset_counters(self) -> None:
        with self._lock:
            self._bytes.clear()
            self.requests.clear()

    def _count(self, request: Request, nbytes: int) -> None:
        with self._lock:
            self._bytes[request.path] = self._bytes.get(request.path, 0) + nbytes
            request.body_bytes += nbytes

    def _log(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer()
    try:
        yield server
    finally:
        server.close()


@dataclass(frozen=True)
class PlanFile:
    """One artifact for :func:`write_plan`: where it is served and what it should be."""

    url: str
    content: bytes
    destination: str
    sha256: str | None = None
    """Defaults to the content's hash; pass another to plan a wrong one."""
    size: int | None = -1
    """Defaults to the content's length; None plans an unknown size."""


def write_plan(path: Path, files: list[PlanFile], destination: str = "wheels") -> Path:
    """Write a valid plan (schema v1) for ``files`` at ``path``; return ``path``."""
    from fetchplan.schemas.plan import Artifact, IndexRef, Inputs, Plan, Target, write_plan

    artifacts = []
    for i, f in enumerate(files):
        sha = f.sha256 if f.sha256 is not None else hashlib.sha256(f.content).hexdigest()
        artifacts.append(
            Artifact(
                name=NormalizedName(f"demo{i}"),
                version="1.0",
                kind="wheel",
                filename=f.destination,
                url=f.url,
                index=f.url.rsplit("/", 1)[0] + "/",
                hashes={"sha256": sha},
                hash_source="index",
                size=len(f.content) if f.size == -1 else f.size,
                destination=f.destination,
            )
        )
    plan = Plan(
        created="2026-01-01T00:00:00Z",
        inputs=Inputs(requirements=("demo",)),
        targets=(Target(name="default", markers={}, tags=("py3-none-any",)),),
        indexes=(IndexRef(url="http://127.0.0.1:1/simple/"),),
        destination=destination,
        artifacts=tuple(artifacts),
    )
    write_plan(path, plan)
    return path


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1 (made with the openssl command line)."""
    import subprocess

    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key
