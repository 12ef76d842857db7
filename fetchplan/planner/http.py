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
  :class:`~fetchplan.planner.preconnect.Preconnector`, which hands each out once under a lock.

Retries are an immutable urllib3 ``Retry`` value: connection errors, read errors and HTTP
429/5xx answers to GET and HEAD are retried with exponential backoff; the last answer is then
returned (``raise_on_status=False``) so the caller can name the status in its error.
"""

from __future__ import annotations

import socket
import sys
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

from fetchplan import __version__
from fetchplan._urls import is_loopback
from fetchplan.auth import CredentialStore, StoreAuth
from fetchplan.planner.preconnect import Preconnector
from fetchplan.planner.timings import Timings

__all__ = ["HttpPolicy", "RecordingSession", "make_session", "retry_policy"]

USER_AGENT = f"fetchplan/{__version__}"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, kw_only=True, slots=True)
class HttpPolicy:
    """Timeouts, retries and pool size for the planner's requests."""

    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.25
    pool_size: int = 8


def retry_policy(policy: HttpPolicy) -> Retry:
    """The urllib3 retry value for ``policy`` (GET and HEAD only, 429 and 5xx retried)."""
    return Retry(
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

    class Connection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _preconnected(self, preconnector) or super()._new_conn()

    class SecureConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _preconnected(self, preconnector) or super()._new_conn()

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = SecureConnection

    return {"http": Pool, "https": SecurePool}


class _Adapter(HTTPAdapter):
    """requests' adapter, whose pools take preconnected sockets when given a preconnector."""

    def __init__(self, *, preconnector: Preconnector | None = None, **kwargs: Any) -> None:
        # Set before HTTPAdapter.__init__, which makes the pool manager.
        self._preconnector = preconnector
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        if self._preconnector is not None:
            self.poolmanager.pool_classes_by_scheme = _pool_classes(self._preconnector)


class _UnverifiedAdapter(_Adapter):
    """For ``--trusted-host`` over https: pip's meaning is 'do not verify its certificate'."""

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        super().cert_verify(conn, url, False, cert)  # type: ignore[no-untyped-call]


class RecordingSession(requests.Session):
    """A ``requests.Session`` that records every request (redirect hops too) in ``timings``."""

    def __init__(self, timings: Timings | None = None) -> None:
        super().__init__()
        self.timings = timings
        self._environment: dict[tuple[str, Any, Any, Any], Any] = {}

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
        parts = urllib.parse.urlsplit(url)
        key = (f"{parts.scheme}://{parts.netloc}", stream, verify, cert)
        settings = self._environment.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, {}, stream, verify, cert)
            self._environment[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}

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
    session.headers["User-Agent"] = USER_AGENT
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
