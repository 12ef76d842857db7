"""The one HTTP session the planner's threads share, with retries, auth and request timing.

Why one ``requests.Session`` is safe across the prefetch threads:

* the session is fully configured (adapters, headers, auth, retry policy) before any worker
  starts and is never mutated afterwards; every per-request value (headers, timeout, range)
  is passed as an argument, not set on the session;
* connections come from urllib3's pool manager, whose pools are thread-safe: each request
  checks a connection out and puts it back; the adapters are sized to the worker count so
  threads do not throw connections away;
* cookies live in a ``RequestsCookieJar`` whose ``http.cookiejar`` base locks every access;
* authentication is a :class:`~fetchplan.auth.StoreAuth` over a
  :class:`~fetchplan.auth.CredentialStore` whose netrc/keyring look-ups happen in
  ``preload`` on the calling thread before the pool starts; afterwards it is read-only, so
  no worker ever prompts, parses netrc, or races on a dict being filled;
* :class:`RecordingSession` only appends to :class:`~fetchplan.planner.timings.Timings`,
  which takes a lock;
* a new connection may start from a socket of a
  :class:`~fetchplan.planner.preconnect.Preconnector`, which hands each out once under a lock,
  and a page requested early from its answer, also handed out once under a lock.

Index pages and PEP 658 files, hundreds of small GETs a plan, go through :func:`get_whole`,
which sends them on the same adapter's urllib3 pool directly when requests would add nothing
to them (:meth:`RecordingSession.fetch_whole`): requests' own work per request costs about as
much CPU as urllib3's, and under one interpreter lock that CPU delays every other request.

Retries are an immutable urllib3 ``Retry`` value: connection errors, read errors and HTTP
429/5xx answers to GET and HEAD are retried with exponential backoff; the last answer is then
returned (``raise_on_status=False``) so the caller can name the status in its error.
"""

from __future__ import annotations

import re
import socket
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, select_proxy
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    DecodeError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ProxyError as Urllib3ProxyError
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.util import Timeout
from urllib3.util.retry import Retry

from fetchplan._connections import (
    DeadlineConnection,
    DeadlineSecureConnection,
    pool_classes,
    watch_proxied,
)
from fetchplan._deadline import deadline, expired
from fetchplan._fs import CHUNK_SIZE, Hashed, TooLarge, check_hashed, copy_hashing, staged
from fetchplan._limits import MAX_PAGE_BYTES, MAX_UNSIZED_BYTES, RETRY_AFTER_CAP
from fetchplan._reasons import failure_reason
from fetchplan._urls import host_of, is_loopback, is_secure_or_trusted, redact
from fetchplan.auth import CredentialStore, StoreAuth
from fetchplan.errors import NetworkError
from fetchplan.planner.preconnect import Preconnector, request_target
from fetchplan.planner.sources import SESSION_HEADERS
from fetchplan.planner.timings import Timings

__all__ = [
    "DOWNLOAD_DEADLINE",
    "BodyTooLarge",
    "Fetched",
    "HttpPolicy",
    "RecordingSession",
    "RedirectRefused",
    "download_file",
    "get_whole",
    "join_limited",
    "make_session",
    "retry_policy",
]

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A URL that requests' prepare_url leaves as it is (no userinfo, IDNA, %-escapes or fragment).
_PLAIN_URL = re.compile(
    r"https?://[A-Za-z0-9.\-]+(?::[0-9]+)?"
    r"(?:/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*)?"
    r"(?:\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*)?"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class HttpPolicy:
    """Timeouts, retries and pool size for the planner's requests."""

    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.25
    pool_size: int = 8


class _CappedRetry(Retry):
    """urllib3's retries, with a server's ``Retry-After`` cut to the executor's cap: urllib3
    would sleep whatever it says (100000 s stalled a plan for hours)."""

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
        wait = super().get_retry_after(response)
        return None if wait is None else min(wait, RETRY_AFTER_CAP)


def retry_policy(policy: HttpPolicy) -> Retry:
    """The urllib3 retry value for ``policy`` (GET and HEAD only, 429 and 5xx retried; a
    ``Retry-After`` honoured up to :data:`~fetchplan._limits.RETRY_AFTER_CAP`)."""
    return _CappedRetry(
        total=policy.retries,
        connect=policy.retries,
        read=policy.retries,
        status=policy.retries,
        other=0,
        redirect=10,
        allowed_methods=frozenset({"GET", "HEAD"}),
        status_forcelist=_RETRY_STATUSES,
        backoff_factor=policy.backoff,
        raise_on_status=False,
        respect_retry_after_header=True,
    )


def _preconnected(connection: HTTPConnection, preconnector: Preconnector) -> socket.socket | None:
    """A socket from ``preconnector`` to where ``connection`` would dial, set up as urllib3 sets
    up the sockets it connects (options, timeout), or None."""
    # _dns_host is what urllib3's own _new_conn dials (the host without a trailing dot).
    sock = preconnector.take(connection._dns_host, connection.port)
    if sock is None:
        return None
    for option in connection.socket_options or ():
        sock.setsockopt(*option)
    if isinstance(connection.timeout, int | float):
        sock.settimeout(connection.timeout)
    sys.audit("http.client.connect", connection, connection.host, connection.port)
    return sock


def _pool_classes(preconnector: Preconnector) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes whose new connections take ``preconnector``'s sockets first.

    Keyed by the host and port a connection dials, so a connection through a proxy (which
    dials the proxy) never takes a socket opened to the index.
    """

    class Connection(DeadlineConnection):
        def _new_conn(self) -> socket.socket:
            return _preconnected(self, preconnector) or super()._new_conn()

    class SecureConnection(DeadlineSecureConnection):
        def _new_conn(self) -> socket.socket:
            return _preconnected(self, preconnector) or super()._new_conn()

    return pool_classes(Connection, SecureConnection)


class _Adapter(HTTPAdapter):
    """requests' adapter, whose pools take preconnected sockets when given a preconnector."""

    def __init__(self, *, preconnector: Preconnector | None = None, **kwargs: Any) -> None:
        # Set before HTTPAdapter.__init__, which makes the pool manager.
        self._preconnector = preconnector
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = (
            pool_classes() if self._preconnector is None else _pool_classes(self._preconnector)
        )

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        return watch_proxied(super().proxy_manager_for(proxy, **kwargs), proxy)


class _UnverifiedAdapter(_Adapter):
    """For ``--trusted-host`` over https: pip's meaning is 'do not verify its certificate'."""

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        super().cert_verify(conn, url, False, cert)  # type: ignore[no-untyped-call]


@dataclass(frozen=True, kw_only=True, slots=True)
class Fetched:
    """A GET's answer with its whole body: what the planner reads of index pages and metadata."""

    url: str
    """The URL the body came from (after redirects)."""
    status_code: int
    reason: str
    headers: Mapping[str, str]
    """Case-insensitive."""
    content: bytes

    @property
    def text(self) -> str:
        """``content`` decoded as the headers say (ISO-8859-1 for text/* without a charset, as
        requests does), else as UTF-8; undecodable bytes are replaced."""
        encoding = get_encoding_from_headers(self.headers) or "utf-8"
        try:
            return str(self.content, encoding, errors="replace")
        except LookupError:
            return str(self.content, "utf-8", errors="replace")


class BodyTooLarge(Exception):
    """A body longer than the caller allows; nothing of it is kept."""


def _as_requests_error(exc: Exception) -> requests.RequestException:
    """urllib3's exception as the one requests raises for it (see ``HTTPAdapter.send`` and
    ``Response.iter_content``), so callers catch one family whichever way a request went."""
    reason = exc.reason if isinstance(exc, MaxRetryError) else exc
    if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
        return requests.ConnectTimeout(exc)
    if isinstance(reason, ReadTimeoutError):
        return requests.ReadTimeout(exc)
    if isinstance(reason, ResponseError):
        return requests.exceptions.RetryError(exc)
    if isinstance(reason, Urllib3ProxyError):
        return requests.exceptions.ProxyError(exc)
    if isinstance(reason, Urllib3SSLError):
        return requests.exceptions.SSLError(exc)
    if isinstance(exc, DecodeError):
        return requests.exceptions.ContentDecodingError(exc)
    if isinstance(exc, ProtocolError):
        return requests.exceptions.ChunkedEncodingError(exc)
    return requests.ConnectionError(exc)


class RedirectRefused(requests.exceptions.InvalidURL):
    """A redirect the planner will not follow (the executor refuses the same ones)."""


class RecordingSession(requests.Session):
    """A ``requests.Session`` that records every request (redirect hops too) in ``timings``
    and follows only redirects that stay on https, loopback or a trusted host."""

    def __init__(self, timings: Timings | None = None) -> None:
        super().__init__()
        self.timings = timings
        self.trusted_hosts: frozenset[str] = frozenset()
        """Hosts (``host`` or ``host:port``) plain http may be redirected to."""
        self._environment: dict[tuple[str, Any, Any, Any], Any] = {}
        self._routes: dict[str, tuple[HTTPAdapter, HTTPConnectionPool] | None] = {}
        self.preconnector: Preconnector | None = None
        """Where pages requested early are taken from (:mod:`fetchplan.planner.preconnect`)."""

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        """requests' settings for ``url``, the environment's part read once per origin.

        requests reads the proxy variables, ``no_proxy`` and the CA bundle variables from
        ``os.environ`` again for every request, a third of its CPU time per request; they do
        not change during a run, so the answer is kept per origin and per the caller's
        ``stream``, ``verify`` and ``cert``. Explicit ``proxies`` are merged as requests does.
        """
        if proxies or not isinstance(url, str):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        key = (_origin(url), stream, verify, cert)
        settings = self._environment.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, {}, stream, verify, cert)
            self._environment[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        """requests' next hop, refused (:class:`RedirectRefused`) from https to http and to
        plain http on a host neither loopback nor trusted, as pip and the executor refuse."""
        location = super().get_redirect_target(resp)
        if location is None:
            return None
        current = resp.url or ""
        target = urllib.parse.urljoin(current, location)
        scheme = urllib.parse.urlsplit(target).scheme.lower()
        if scheme not in ("http", "https"):
            raise RedirectRefused(f"redirect to {redact(target)} refused (not http or https)")
        if scheme == "http" and urllib.parse.urlsplit(current).scheme.lower() == "https":
            raise RedirectRefused(f"redirect from https to {redact(target)} refused")
        if not is_secure_or_trusted(target, self.trusted_hosts):
            raise RedirectRefused(
                f"redirect to plain {redact(target)} refused: {host_of(target)} is neither "
                "loopback nor a --trusted-host"
            )
        return location

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        timings = self.timings
        if timings is None:
            return super().send(request, **kwargs)
        started = timings.now()
        try:
            response = super().send(request, **kwargs)
        except requests.RequestException:
            timings.record_request(request.method or "GET", request.url or "", None, started, 0)
            raise
        if kwargs.get("stream"):
            _record_when_read(timings, request, response, started)
        else:
            timings.record_request(
                request.method or "GET",
                request.url or "",
                response.status_code,
                started,
                _wire_bytes(response),
            )
        return response

    def fetch_whole(
        self, url: str, *, headers: Mapping[str, str], timeout: float, limit: int | None = None
    ) -> Fetched | None:
        """GET ``url`` on urllib3 directly, or None where that would not do what ``get`` does.

        ``get`` spends more CPU per request than urllib3 itself (preparing, merging settings,
        cookies, hooks, the response object): for the planner's hundreds of small GETs that
        CPU, under one interpreter lock, delays every other request. This path uses the same
        adapter's pool (so its TLS settings, trusted hosts, retries and preconnected sockets),
        headers and credentials, and is taken only when requests would add nothing: a plain
        URL (no userinfo, IDNA or escapes), no proxy for its origin, an empty cookie jar and no
        hooks (requests' auth only by a :class:`~fetchplan.auth.StoreAuth`). A redirect answer
        gives None after it is read, so ``get`` follows it (one request more). Where the same
        request, headers and all, was sent early (:mod:`fetchplan.planner.preconnect`), its
        answer is returned instead. Raises requests' exceptions, and :class:`BodyTooLarge`
        past ``limit`` bytes.
        """
        route = self._route(url) if self._direct_allowed(url) else None
        if route is None:
            return None
        adapter, pool = route
        request_headers = self._request_headers(url, headers)
        if self.preconnector is not None:
            early = self.preconnector.answer(url, request_headers)
            if early is not None:
                _check_limit(url, len(early.content), limit)
                return Fetched(
                    url=url,
                    status_code=early.status,
                    reason=early.reason,
                    headers=CaseInsensitiveDict(early.headers),
                    content=early.content,
                )
        timings = self.timings
        started = timings.now() if timings is not None else 0.0
        answer = _Answer()
        try:
            _read_whole(
                answer, adapter, pool, url, headers=request_headers, timeout=timeout, limit=limit
            )
        except ClosedPoolError:
            # The pool manager dropped this origin's pool (more origins than it keeps).
            self._routes.pop(_origin(url), None)
            return None
        except Urllib3Error as exc:
            raise _as_requests_error(exc) from exc
        except OSError as exc:
            raise requests.ConnectionError(exc) from exc
        finally:
            if timings is not None:
                timings.record_request("GET", url, answer.status, started, answer.received)
        return answer.fetched

    def _direct_allowed(self, url: str) -> bool:
        """Whether requests would add nothing to a GET of ``url`` (see :meth:`fetch_whole`)."""
        return not (
            self.cookies
            or self.params
            or any(self.hooks.values())
            or not (self.auth is None or isinstance(self.auth, StoreAuth))
            or not _PLAIN_URL.fullmatch(url)
        )

    def _request_headers(self, url: str, headers: Mapping[str, str]) -> CaseInsensitiveDict[str]:
        """The session's headers, then ``headers``, then the credentials for ``url``."""
        request_headers = CaseInsensitiveDict[str]()
        for name, value in self.headers.items():
            request_headers[name] = value if isinstance(value, str) else value.decode("latin-1")
        request_headers.update(headers)
        if "Authorization" not in request_headers and isinstance(self.auth, StoreAuth):
            authorization = self.auth.header_for(url)
            if authorization is not None:
                request_headers["Authorization"] = authorization
        return request_headers

    def _route(self, url: str) -> tuple[HTTPAdapter, HTTPConnectionPool] | None:
        """The adapter and connection pool ``get`` would use for ``url``'s origin without a
        proxy; None with a proxy or an adapter of another kind (offline). Kept per origin."""
        origin = _origin(url)
        if origin in self._routes:
            return self._routes[origin]
        route: tuple[HTTPAdapter, HTTPConnectionPool] | None = None
        adapter = self.get_adapter(url)
        settings = self.merge_environment_settings(url, {}, False, None, None)
        if isinstance(adapter, HTTPAdapter) and select_proxy(url, settings["proxies"]) is None:
            request = requests.PreparedRequest()
            request.url = url
            verify, cert = settings["verify"], settings["cert"]
            pool = adapter.get_connection_with_tls_context(request, verify, cert=cert)
            if isinstance(pool, HTTPConnectionPool):
                adapter.cert_verify(pool, url, verify, cert)  # type: ignore[no-untyped-call]
                route = (adapter, pool)
        self._routes[origin] = route
        return route


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(slots=True)
class _Answer:
    """What a direct GET got, as far as it got (the timings record it, also after an error)."""

    status: int | None = None
    received: int = 0
    fetched: Fetched | None = None
    """None for a redirect, which ``get`` is to follow."""


def _read_whole(
    answer: _Answer,
    adapter: HTTPAdapter,
    pool: HTTPConnectionPool,
    url: str,
    *,
    headers: CaseInsensitiveDict[str],
    timeout: float,
    limit: int | None,
) -> None:
    """GET ``url`` on ``pool`` into ``answer``, the whole body (:class:`BodyTooLarge` past
    ``limit``)."""
    response = pool.urlopen(
        "GET",
        request_target(url),
        headers=headers,
        redirect=False,
        assert_same_host=False,
        preload_content=False,
        decode_content=True,
        retries=adapter.max_retries,
        timeout=Timeout(connect=timeout, read=timeout),
    )
    answer.status = response.status
    try:
        body = response.read(None if limit is None else limit + 1)
        answer.received = response.tell() or len(body)
        if limit is not None and len(body) > limit:
            response.close()  # the rest is never read: the connection is not reused
        _check_limit(url, len(body), limit)
        if response.get_redirect_location():
            return
    finally:
        response.release_conn()
    answer.fetched = Fetched(
        url=url,
        status_code=response.status,
        reason=response.reason or "",
        headers=response.headers,
        content=body,
    )


def _check_limit(url: str, size: int, limit: int | None) -> None:
    """:class:`BodyTooLarge` for a body of ``size`` bytes past ``limit`` (None: no limit)."""
    if limit is not None and size > limit:
        raise BodyTooLarge(f"{url}: response is larger than {limit} bytes")


def _wire_bytes(response: requests.Response) -> int:
    raw = response.raw
    told = raw.tell() if hasattr(raw, "tell") else 0
    if isinstance(told, int) and told > 0:
        return told
    return len(response.content)


def _record_when_read(
    timings: Timings,
    request: requests.PreparedRequest,
    response: requests.Response,
    started: float,
) -> None:
    # A streamed body is read later by the caller; record the request once its body has been
    # consumed or the response closed, whichever comes first.
    raw = response.raw
    original_close = response.close
    done = False
    counted = 0

    def finish() -> None:
        nonlocal done
        if done:
            return
        done = True
        # tell() counts bytes off the wire (compressed), but not those of chunked bodies.
        told = raw.tell() if hasattr(raw, "tell") else 0
        timings.record_request(
            request.method or "GET",
            request.url or "",
            response.status_code,
            started,
            max(told if isinstance(told, int) else 0, counted),
        )

    def close() -> None:
        finish()
        original_close()

    response.close = close  # type: ignore[method-assign]
    original_read = raw.read

    def read(*args: Any, **kwargs: Any) -> bytes:
        nonlocal counted
        data: bytes = original_read(*args, **kwargs)
        counted += len(data)
        if not data:
            finish()
        return data

    raw.read = read  # type: ignore[method-assign]


def make_session(
    policy: HttpPolicy,
    store: CredentialStore,
    *,
    trusted_hosts: Iterable[str] = (),
    timings: Timings | None = None,
    headers: Mapping[str, str] | None = None,
    preconnector: Preconnector | None = None,
) -> RecordingSession:
    """A session ready to be shared by ``policy.pool_size`` threads (see module docstring);
    its connections start from ``preconnector``'s sockets where it has some."""
    session = RecordingSession(timings)
    session.trusted_hosts = frozenset(h.lower() for h in trusted_hosts)
    session.headers = CaseInsensitiveDict(SESSION_HEADERS)
    session.preconnector = preconnector
    if headers:
        session.headers.update(headers)
    session.auth = StoreAuth(store)
    # Proxies and CA bundles still come from the environment as requests has it.
    retry = retry_policy(policy)
    size = max(1, policy.pool_size)
    adapter = _Adapter(
        pool_connections=size, pool_maxsize=size, max_retries=retry, preconnector=preconnector
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    unverified = [h for h in trusted_hosts if not is_loopback(h.split(":")[0])]
    if unverified:
        # pip's --trusted-host also skips certificate checks for that host; warning on every
        # request about what the user asked for would only bury real warnings.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        insecure = _UnverifiedAdapter(
            pool_connections=size, pool_maxsize=size, max_retries=retry, preconnector=preconnector
        )
        for host in unverified:
            session.mount(f"https://{host}/", insecure)
            if ":" not in host:
                session.mount(f"https://{host}:", insecure)
    return session


def get_whole(
    session: requests.Session,
    url: str,
    *,
    headers: Mapping[str, str],
    timeout: float,
    limit: int | None = None,
) -> Fetched:
    """GET ``url`` and read the whole body (at most ``limit`` bytes decoded, by default
    :data:`~fetchplan._limits.MAX_PAGE_BYTES`, else :class:`BodyTooLarge`): on urllib3
    directly where :meth:`RecordingSession.fetch_whole` can, else through ``session.get``.
    Raises requests' exceptions.

    The headers must come within ``timeout`` of the request being sent and the whole answer
    within :data:`WHOLE_DEADLINE` times it, however slowly they trickle in
    (:mod:`fetchplan._deadline`); a request past either is not retried."""
    if limit is None:
        limit = MAX_PAGE_BYTES
    with deadline(headers=timeout, total=WHOLE_DEADLINE * timeout):
        try:
            return _get_whole(session, url, headers=headers, timeout=timeout, limit=limit)
        except requests.RequestException as exc:
            if expired():
                raise requests.Timeout(
                    f"{url}: no complete answer within its deadline (headers within "
                    f"{timeout:g}s, all within {WHOLE_DEADLINE * timeout:g}s)"
                ) from exc
            raise


WHOLE_DEADLINE = 10
"""A page's or metadata file's whole answer must come within this many times the timeout."""


def _get_whole(
    session: requests.Session,
    url: str,
    *,
    headers: Mapping[str, str],
    timeout: float,
    limit: int | None,
) -> Fetched:
    if isinstance(session, RecordingSession):
        fetched = session.fetch_whole(url, headers=headers, timeout=timeout, limit=limit)
        if fetched is not None:
            return fetched
    with session.get(url, headers=dict(headers), timeout=timeout, stream=True) as response:
        return Fetched(
            url=response.url or url,
            status_code=response.status_code,
            reason=response.reason or "",
            headers=response.headers,
            content=join_limited(response.iter_content(64 * 1024), limit, url),
        )


def join_limited(chunks: Iterable[bytes], limit: int | None, url: str) -> bytes:
    """``chunks`` joined, or :class:`BodyTooLarge` as soon as they pass ``limit`` bytes."""
    parts: list[bytes] = []
    received = 0
    for chunk in chunks:
        received += len(chunk)
        _check_limit(url, received, limit)
        parts.append(chunk)
    return b"".join(parts)


DOWNLOAD_DEADLINE = 3600.0
"""Longest a whole-file download may take (its response headers: the timeout)."""


@contextmanager
def download_file(
    session: requests.Session,
    url: str,
    directory: Path | None,
    *,
    sha256: str | None,
    timeout: float,
    limit: int = MAX_UNSIZED_BYTES,
    received: Callable[[int], None] | None = None,
) -> Iterator[tuple[Path, Hashed]]:
    """GET ``url`` into a temporary file in ``directory`` (None: the system's), hashed while
    written (:func:`fetchplan._fs.copy_hashing`) and checked against ``sha256`` (None:
    anything); yield the file's path and what was hashed.

    The planner's one download of a whole file (an sdist, or an archive whose metadata is
    read from it): the exact bytes (``Accept-Encoding: identity``), at most ``limit`` of
    them, within :data:`DOWNLOAD_DEADLINE`. ``received`` is told each chunk's length. The
    file is removed on leaving unless the caller renamed it away. Raises
    :class:`~fetchplan.errors.NetworkError` (the request failed, an answer other than 200,
    the body was cut off), :class:`BodyTooLarge` past ``limit`` and
    :class:`~fetchplan.errors.HashMismatch`, each naming the URL without credentials; nothing
    is kept after any of them.
    """
    where = redact(url)
    with staged(directory, ".download.") as temp:
        with deadline(headers=timeout, total=DOWNLOAD_DEADLINE):
            try:
                response = session.get(
                    url, headers={"Accept-Encoding": "identity"}, stream=True, timeout=timeout
                )
            except requests.RequestException as exc:
                raise NetworkError(f"{where}: {failure_reason(exc)}") from None
            with response:
                if response.status_code != 200:
                    raise NetworkError(f"{where}: HTTP {response.status_code}")
                try:
                    hashed = copy_hashing(
                        response.iter_content(CHUNK_SIZE), temp.out, limit=limit, progress=received
                    )
                except requests.RequestException as exc:
                    raise NetworkError(
                        f"{where}: download interrupted: {failure_reason(exc)}"
                    ) from None
                except TooLarge as exc:
                    raise BodyTooLarge(
                        f"{where}: response is larger than {exc.limit} bytes"
                    ) from None
        temp.close()
        check_hashed(where, hashed, sha256=sha256, size=None)
        yield temp.path, hashed
