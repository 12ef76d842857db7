"""An in-process HTTP index server over a ``write_index`` root, with switches per test.

``IndexServer(root)`` serves ``root`` (the directory ``tests.support.index.write_index`` laid
out) on ``127.0.0.1`` at a free port from a background thread. Its behaviour is read from
``server.options`` (a mutable ``ServerOptions``) at every request, so a test may flip a switch
while the server runs::

    with IndexServer(root) as server:
        server.options.ranges = False          # ignore Range: always 200 with the whole body
        server.options.formats = "html"        # JSON-only clients now get 406
        server.options.throttle_bps = 50_000   # slow body writes
        ...
        assert server.bytes_sent("/files/") > 0

What it serves:

- Files with a strong ``ETag`` (sha256 of the content), ``Last-Modified``, ``Accept-Ranges``,
  single ``Range: bytes=a-b | a- | -n`` (206 + ``Content-Range``; 416 with
  ``Content-Range: bytes */size`` when unsatisfiable; a multi-range or malformed header is
  ignored and the whole file sent), ``If-Range`` (ETag or exact Last-Modified date; a mismatch
  sends 200 whole), ``If-None-Match`` (304), ``HEAD``. HTTP/1.1 keep-alive, every response
  has a ``Content-Length``.
- A directory URL (``/simple/``, ``/simple/<project>/``) is negotiated on ``Accept`` (PEP 691,
  with q-values) between its ``index.json`` (``application/vnd.pypi.simple.v1+json``) and
  ``index.html`` (``text/html`` or ``application/vnd.pypi.simple.v1+html``, as asked); 406 when
  nothing acceptable is available. No ``Accept`` header means ``text/html``. A directory URL
  without its trailing slash is redirected (301) to it.
- ``options.page_headers`` are added to every directory page (``Cache-Control``, say).
- ``options.pep658 = False`` makes every ``*.metadata`` URL 404. The pages still advertise the
  metadata unless the index was written with ``IndexOptions(metadata_files=False)``: that is a
  server that lies about PEP 658, which is itself a useful test.

Fault injection: ``server.set_handler_hook(hook)`` installs ``hook(handler) -> bool``, called
for every request after ``options.delay`` and before authentication and everything else. It
returns True when it has fully handled the request itself. ``IndexRequestHandler`` has the
helpers a hook needs: ``respond``, ``start_response``, ``write_body``, ``abort``,
``serve_default(abort_after=N)``, ``local_path``, ``range_header``, ``index_server``.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import http.client
import http.server
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

__all__ = [
    "HTML_TYPE",
    "JSON_TYPE",
    "HandlerHook",
    "IndexRequestHandler",
    "IndexServer",
    "LoopbackServer",
    "ProcessServer",
    "RequestRecord",
    "ServerOptions",
    "free_port",
    "parse_accept",
    "parse_range",
    "wait_for_http",
]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
_CHUNK = 64 * 1024

Formats = Literal["both", "html", "json"]


@dataclass
class ServerOptions:
    """Switches read at every request; change them while the server runs."""

    ranges: bool = True
    """Honour ``Range``; when False, ignore it and send 200 with the whole body."""
    pep658: bool = True
    """Serve ``*.metadata`` files; when False they 404 (pages may still advertise them)."""
    formats: Formats = "both"
    """Which simple-API formats directory URLs may be negotiated to."""
    delay: float = 0.0
    """Seconds to sleep before handling each request (before the hook too)."""
    throttle_bps: int | None = None
    """Rate limit of body writes in bytes per second; None for full speed."""
    auth: tuple[str, str] | None = None
    """Require HTTP Basic ``(user, password)``; other requests get 401."""
    etags: bool = True
    """Send ``ETag`` and ``Last-Modified`` (and honour ``If-Range``/``If-None-Match``)."""
    page_headers: dict[str, str] = field(default_factory=dict)
    """Extra header fields of every project and root page (``Cache-Control``, say)."""


@dataclass
class RequestRecord:
    """One request as the server saw it. Appended when the request arrives and completed in
    place, so a client that has read the whole response sees its final status and bytes."""

    method: str
    path: str
    """The request target as sent, with the query string."""
    headers: dict[str, str]
    """Request headers, names lower-cased."""
    status: int | None = None
    bytes_sent: int = 0
    """Body bytes written for this request."""

    @property
    def range(self) -> str | None:
        return self.headers.get("range")


HandlerHook = Callable[["IndexRequestHandler"], bool]


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the caller must tolerate a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_http(
    url: str, timeout: float = 10.0, process: subprocess.Popen[bytes] | None = None
) -> int:
    """Poll ``url`` until it answers with any HTTP status; return the status.

    Raise ``RuntimeError`` when ``process`` (the server starting) exits first, or after
    ``timeout`` seconds.
    """
    parts = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {process.returncode} while starting")
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=2)
        try:
            conn.request("GET", parts.path or "/")
            response = conn.getresponse()
            response.read()
            return response.status
        except OSError as exc:
            last_error = exc
        finally:
            conn.close()
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s: {last_error}")


class LoopbackServer:
    """What the test servers share: URLs on ``127.0.0.1:port``, and ``with`` closes them."""

    port: int

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def index_url(self) -> str:
        """The simple index: ``http://127.0.0.1:PORT/simple/``."""
        return f"{self.url}/simple/"

    def close(self) -> None:
        """Stop serving and wait for it (idempotent)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ProcessServer(LoopbackServer):
    """A :class:`LoopbackServer` run as a child process, started by :meth:`_start`."""

    _proc: subprocess.Popen[bytes] | None = None
    port = 0

    def _log(self) -> str:
        """The tail of the server's logs, for start-up errors."""
        raise NotImplementedError

    def _start(
        self,
        name: str,
        launch: Callable[[], subprocess.Popen[bytes]],
        *,
        timeout: float,
        attempts: int,
    ) -> int:
        """Run ``launch()`` on a free ``self.port`` until ``index_url`` answers; its status.

        Another port is tried (up to ``attempts`` in all) only when the log says the port was
        taken. Raises ``RuntimeError`` with every attempt's error and log.
        """
        problems: list[str] = []
        for _ in range(attempts):
            self.port = free_port()
            self._proc = launch()
            try:
                return wait_for_http(self.index_url, timeout, process=self._proc)
            except RuntimeError as exc:
                self.close()
                log = self._log()
                problems.append(f"{exc}\n{log}")
                if "Address already in use" not in log:
                    break
        raise RuntimeError(f"{name} failed to start:\n" + "\n".join(problems))

    def close(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and wait for it (idempotent)."""
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def parse_range(header: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """Parse one ``bytes=`` range against a body of ``size`` bytes.

    Returns ``(first, last)`` inclusive, ``"unsatisfiable"`` (416), or None when the header is
    malformed or names several ranges (the server then ignores it, as RFC 9110 allows).
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_s, dash, last_s = spec.strip().partition("-")
    if dash != "-":
        return None
    try:
        if first_s == "":
            suffix = int(last_s)
            if suffix < 0:
                return None
            if suffix == 0 or size == 0:
                return "unsatisfiable"
            return max(0, size - suffix), size - 1
        first = int(first_s)
        last = int(last_s) if last_s != "" else size - 1
    except ValueError:
        return None
    if first < 0 or (last_s != "" and last < first):
        return None
    if first >= size:
        return "unsatisfiable"
    return first, min(last, size - 1)


def parse_accept(header: str | None) -> list[tuple[str, float]]:
    """``Accept`` as ``[(media_range, q), ...]`` in the client's order (q defaults to 1)."""
    if header is None or header.strip() == "":
        return [("text/html", 1.0)]
    ranges: list[tuple[str, float]] = []
    for item in header.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        if media == "":
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((media.lower(), q))
    return ranges


# (offered media type, file in the directory, Content-Type replied)
_CANDIDATES: tuple[tuple[str, str, str], ...] = (
    ("text/html", "index.html", "text/html; charset=utf-8"),
    (HTML_TYPE, "index.html", HTML_TYPE),
    ("application/vnd.pypi.simple.latest+html", "index.html", HTML_TYPE),
    (JSON_TYPE, "index.json", JSON_TYPE),
    ("application/vnd.pypi.simple.latest+json", "index.json", JSON_TYPE),
)


def _negotiate(accept: str | None, available: set[str]) -> tuple[str, str] | None:
    """Pick ``(filename, content_type)`` from ``available`` index files, or None (406)."""
    ranges = parse_accept(accept)
    best: tuple[tuple[float, int, int, int], str, str] | None = None
    for order, (offered, filename, content_type) in enumerate(_CANDIDATES):
        if filename not in available:
            continue
        kind = offered.partition("/")[0]
        match: tuple[float, int, int] | None = None
        for position, (media, q) in enumerate(ranges):
            m_kind, _, m_sub = media.partition("/")
            if media == offered:
                specificity = 2
            elif m_kind == kind and m_sub == "*":
                specificity = 1
            elif media == "*/*":
                specificity = 0
            else:
                continue
            if match is None or specificity > match[1]:
                match = (q, specificity, position)
        if match is None or match[0] <= 0:
            continue
        key = (match[0], match[1], -match[2], -order)
        if best is None or key > best[0]:
            best = (key, filename, content_type)
    return None if best is None else (best[1], best[2])


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: IndexServer

    def handle_error(self, request: object, client_address: object) -> None:

        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return  # clients hang up mid-response in these tests on purpose
        if exc is not None:
            self.owner.errors.append(exc)
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class IndexRequestHandler(http.server.BaseHTTPRequestHandler):
    """Serves one connection. Hooks use its public helpers to answer in their own way."""

    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    timeout = 30
    record: RequestRecord
    _abort_after: int | None
    _abort_reset: bool

    # -- helpers for hooks -------------------------------------------------------------------

    @property
    def index_server(self) -> IndexServer:
        """The ``IndexServer`` this request came to (its options, root, counters)."""
        return self.server.owner

    @property
    def range_header(self) -> str | None:
        return self.headers.get("Range")

    @property
    def url_path(self) -> str:
        """The request path without query string, percent-decoded."""
        return urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)

    def local_path(self) -> Path | None:
        """The file or directory under the root this request names, or None (outside/absent)."""
        root = self.index_server.root
        target = (root / self.url_path.lstrip("/")).resolve()
        if target != root and root not in target.parents:
            return None
        return target if target.exists() else None

    def start_response(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        """Send the status line and headers (add ``Content-Length`` yourself for keep-alive)."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def write_body(self, data: bytes) -> None:
        """Write body bytes, throttled by ``options.throttle_bps`` and counted."""
        view = memoryview(data)
        bps = self.index_server.options.throttle_bps
        chunk = _CHUNK if bps is None else max(1, min(_CHUNK, bps // 20))
        for start in range(0, len(view), chunk):
            piece = view[start : start + chunk]
            began = time.monotonic()
            # Counted before the write so a client that has read the body sees it counted.
            self.index_server._count(self.record, len(piece))
            try:
                self.wfile.write(piece)
                self.wfile.flush()
            except OSError:
                self.index_server._count(self.record, -len(piece))
                raise
            if bps is not None:
                wait = len(piece) / bps - (time.monotonic() - began)
                if wait > 0:
                    time.sleep(wait)

    def respond(
        self,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        """A whole response with ``Content-Type`` and ``Content-Length`` (no body for HEAD)."""
        all_headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        all_headers.update(headers or {})
        self.start_response(status, all_headers)
        if self.command != "HEAD":
            self.write_body(body)

    def abort(self, *, reset: bool = True) -> None:
        """Drop the connection now: a server dying mid-transfer.

        ``reset=True`` sends a TCP RST (bytes still in the kernel's send buffer may be lost,
        so the client sees a connection reset, possibly with fewer bytes); ``reset=False``
        closes cleanly (FIN) after everything written so far, so the client reads exactly the
        bytes written and then a premature EOF.
        """
        self.close_connection = True
        sock = self.connection
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        # rfile (a makefile() wrapper) holds a reference that would defer the real close.
        with contextlib.suppress(OSError):
            self.rfile.close()
        sock.close()

    def serve_default(self, *, abort_after: int | None = None, reset: bool = False) -> None:
        """The normal response (auth, negotiation, ranges...). With ``abort_after``, drop the
        connection (see ``abort``) once that many body bytes have been written."""
        self._abort_after = abort_after
        self._abort_reset = reset
        self._serve()

    # -- the normal behaviour ----------------------------------------------------------------

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.index_server._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.index_server._track(self.connection, add=False)

    def send_response(self, code: int, message: str | None = None) -> None:
        # Malformed requests get their error before _dispatch created a record.
        record: RequestRecord | None = getattr(self, "record", None)
        if record is not None:
            record.status = code
        super().send_response(code, message)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        owner = self.index_server
        self.record = owner._new_record(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}
        )
        self._abort_after = None
        self._abort_reset = False
        options = owner.options
        if options.delay > 0:
            time.sleep(options.delay)
        hook = owner._hook
        if hook is not None and hook(self):
            return
        self._serve()

    def _serve(self) -> None:
        options = self.index_server.options
        if options.auth is not None and not self._authorized(options.auth):
            self.respond(401, b"authentication required\n", {"WWW-Authenticate": 'Basic realm="t"'})
            return
        target = self.local_path()
        if target is None:
            self.respond(404, b"not found\n")
            return
        if target.is_dir():
            if not urllib.parse.urlsplit(self.path).path.endswith("/"):
                self.respond(301, headers={"Location": self.url_path + "/"})
                return
            self._serve_directory(target)
            return
        if target.name.endswith(".metadata") and not options.pep658:
            self.respond(404, b"not found\n")
            return
        self._serve_file(target, "application/octet-stream", vary=False)

    def _authorized(self, auth: tuple[str, str]) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except ValueError:
            return False
        return (user, password) == auth

    def _serve_directory(self, directory: Path) -> None:
        formats = self.index_server.options.formats
        available = {
            name
            for name, fmt in (("index.html", "html"), ("index.json", "json"))
            if (directory / name).is_file() and formats in ("both", fmt)
        }
        if not available:
            self.respond(404, b"not found\n")
            return
        chosen = _negotiate(self.headers.get("Accept"), available)
        if chosen is None:
            self.respond(406, b"no acceptable representation\n", {"Vary": "Accept"})
            return
        filename, content_type = chosen
        self._serve_file(directory / filename, content_type, vary=True)

    def _serve_file(self, path: Path, content_type: str, *, vary: bool) -> None:
        data = path.read_bytes()
        size = len(data)
        options = self.index_server.options
        headers: dict[str, str] = {"Content-Type": content_type}
        if vary:
            headers["Vary"] = "Accept"
            headers.update(options.page_headers)
        etag = last_modified = None
        if options.etags:
            etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
            last_modified = email.utils.formatdate(path.stat().st_mtime, usegmt=True)
            headers["ETag"] = etag
            headers["Last-Modified"] = last_modified
        if options.ranges:
            headers["Accept-Ranges"] = "bytes"
        if etag is not None and self.headers.get("If-None-Match") in (etag, "*"):
            self.start_response(304, headers | {"Content-Length": "0"})
            return
        status, first, last = 200, 0, size - 1
        range_header = self.range_header
        if options.ranges and range_header is not None:
            if_range = self.headers.get("If-Range")
            if if_range is None or if_range in (etag, last_modified):
                parsed = parse_range(range_header, size)
                if parsed == "unsatisfiable":
                    self.respond(416, b"", {"Content-Range": f"bytes */{size}"})
                    return
                if parsed is not None:
                    status, (first, last) = 206, parsed
                    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        body = data[first : last + 1]
        headers["Content-Length"] = str(len(body))
        self.start_response(status, headers)
        if self.command == "HEAD":
            return
        if self._abort_after is not None and self._abort_after < len(body):
            self.write_body(body[: self._abort_after])
            self.abort(reset=self._abort_reset)
            return
        self.write_body(body)


class IndexServer(LoopbackServer):
    """A threaded HTTP server over ``root`` on ``127.0.0.1``; see the module docstring."""

    def __init__(self, root: Path, options: ServerOptions | None = None) -> None:
        self.root = Path(root).resolve()
        self.options = options if options is not None else ServerOptions()
        self.errors: list[BaseException] = []
        """Unexpected exceptions raised while handling requests (client hang-ups excluded)."""
        self._hook: HandlerHook | None = None
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._records: list[RequestRecord] = []
        self._total = 0
        self._by_path: dict[str, int] = {}
        self._httpd = _HTTPServer(("127.0.0.1", 0), IndexRequestHandler)
        self._httpd.owner = self
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def file_url(self, filename: str) -> str:
        """The URL of ``root/files/<filename>``."""
        return f"{self.url}/files/{urllib.parse.quote(filename)}"

    def set_handler_hook(self, hook: HandlerHook | None) -> None:
        """Install (or with None remove) the hook called for every request; see module doc."""
        self._hook = hook

    def bytes_sent(self, path_substring: str | None = None) -> int:
        """Body bytes sent since the last reset: all, or to paths containing the substring."""
        with self._lock:
            if path_substring is None:
                return self._total
            return sum(n for p, n in self._by_path.items() if path_substring in p)

    def bytes_by_path(self) -> dict[str, int]:
        """Body bytes sent per request path (query string stripped)."""
        with self._lock:
            return dict(self._by_path)

    def requests(self, path_substring: str | None = None) -> list[RequestRecord]:
        """The request log since the last reset, oldest first, optionally filtered by path."""
        with self._lock:
            return [r for r in self._records if path_substring is None or path_substring in r.path]

    def reset_counters(self) -> None:
        """Forget the request log and byte counts."""
        with self._lock:
            self._records.clear()
            self._total = 0
            self._by_path.clear()

    def close(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        if not self._thread.is_alive():
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        with self._lock:
            connections = list(self._connections)
        # Idle keep-alive connections would otherwise hold handler threads for `timeout`.
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _track(self, sock: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(sock)
            else:
                self._connections.discard(sock)

    def _new_record(self, method: str, path: str, headers: dict[str, str]) -> RequestRecord:
        record = RequestRecord(method=method, path=path, headers=headers)
        with self._lock:
            self._records.append(record)
        return record

    def _count(self, record: RequestRecord, n: int) -> None:
        key = urllib.parse.urlsplit(record.path).path
        with self._lock:
            record.bytes_sent += n
            self._total += n
            self._by_path[key] = self._by_path.get(key, 0) + n
