"""One try at an artifact's bytes: a single request (or local copy) into its partial file.

:func:`attempt` streams the body into ``<dest>/.fetchplan/partial/<name>.part`` while hashing
it, resuming with ``Range``/``If-Range`` from the offset it is given, capped at the plan's
size, checkpointing progress, and returns what came of it as an
:mod:`outcome <fetchplan.executor.outcome>` value: a complete :class:`Received` body (for
:func:`~fetchplan.executor.verify.check_body` to judge), or :class:`Retry`, :class:`Restart`
or :class:`Fail`. Inside a try the same three are raised, as :class:`TryAgain`,
:class:`StartOver` and :class:`GiveUp`, from wherever they are found. Redirects are followed
here, by hand, so credentials go only to their own origin and https never downgrades to http.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from requests.auth import AuthBase, HTTPBasicAuth

from fetchplan._deadline import deadline, expired
from fetchplan._fs import (
    CHUNK_SIZE,
    Hasher,
    TooLarge,
    copy_hashing,
    hash_file,
    read_chunks,
)
from fetchplan._reasons import failure_reason
from fetchplan.executor.checkpoint import ArtifactState
from fetchplan.executor.context import Cancelled, Context, FileTiming
from fetchplan.executor.limits import StallMeter
from fetchplan.executor.outcome import Body, Fail, Outcome, Received, Restart, Retry
from fetchplan.executor.protocol import (
    REDIRECT_STATUSES,
    RedirectRefused,
    ResumeVerdict,
    Validator,
    check_partial_response,
    content_encoding,
    range_headers,
    redirect_target,
    strong_validator,
)
from fetchplan.executor.retry import RetryPolicy, parse_retry_after
from fetchplan.schemas.plan import Artifact

__all__ = [
    "MAX_REDIRECTS",
    "GiveUp",
    "StartOver",
    "TryAgain",
    "attempt",
    "host_port",
    "open_url",
]

log = logging.getLogger(__name__)

MAX_REDIRECTS = 10
_READ_SIZE = CHUNK_SIZE


class TryAgain(Exception):
    """Worth another try: raised inside a try, returned as a :class:`Retry` (which see)."""

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        progress: bool = False,
        reached: int = 0,
    ):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.progress = progress
        self.reached = reached


class StartOver(Exception):
    """The partial is wrong: raised inside a try, returned as a :class:`Restart`."""

    def __init__(self, reason: str, *, final: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final


class GiveUp(Exception):
    """Retrying cannot help (a 404, a TLS error, a refused redirect); ``str()`` says why.
    Raised inside a try (and by :func:`open_url`), returned as a :class:`Fail`."""


def _rehash_partial(part: Path) -> Body:
    """A partial already as long as the plan's size (killed before its rename): hash it."""
    hashed = hash_file(part)
    return Body(sha256=hashed.sha256, size=hashed.size, encoding="identity", resumed=True)


@contextlib.contextmanager
def _registered(response: requests.Response, ctx: Context, timing: FileTiming) -> Iterator[None]:
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            port = sock.getsockname()[1]
            if not timing.connections or timing.connections[-1] != port:
                timing.connections.append(port)
    else:
        sock = None
    ctx.sockets.add(sock)
    try:
        yield
    finally:
        ctx.sockets.discard(sock)


class _NoAuth(AuthBase):
    """Explicitly no credentials: keeps requests from consulting netrc on its own."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


_NO_AUTH = _NoAuth()


def open_url(url: str, headers: dict[str, str], ctx: Context) -> requests.Response:
    """GET ``url``, following redirects ourselves: credentials go only to their own origin.

    Raises :class:`TryAgain` for connection failures and timeouts, :class:`GiveUp` for TLS
    errors, refused redirects and requests that cannot be made (offline, a bad URL).
    """
    current = url
    timeout = (ctx.limits.connect_timeout, ctx.limits.stall_window)
    for _ in range(MAX_REDIRECTS + 1):
        creds = ctx.credentials.lookup(current)
        auth: AuthBase = _NO_AUTH if creds is None else HTTPBasicAuth(*creds)
        try:
            response = ctx.session.get(
                current,
                headers=headers,
                stream=True,
                allow_redirects=False,
                timeout=timeout,
                auth=auth,
            )
        except requests.exceptions.SSLError as exc:
            raise GiveUp(f"TLS error: {failure_reason(exc)}") from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TryAgain(f"connection failed: {failure_reason(exc)}") from exc
        except requests.RequestException as exc:
            raise GiveUp(f"request failed: {failure_reason(exc)}") from exc
        if response.status_code not in REDIRECT_STATUSES:
            return response
        location = response.headers.get("Location")
        response.close()
        try:
            current = redirect_target(current, location, ctx.trusted_hosts)
        except RedirectRefused as exc:
            raise GiveUp(str(exc)) from exc
        log.debug("redirected to %s", current)
    raise GiveUp(f"more than {MAX_REDIRECTS} redirects (a redirect loop?)")


def attempt(
    artifact: Artifact,
    part: Path,
    *,
    offset: int,
    validator: Validator | None,
    ctx: Context,
    timing: FileTiming,
) -> Outcome:
    """One try at the artifact's bytes from ``offset`` on into ``part`` (resuming with
    ``validator``): a partial already complete is hashed, a ``file://`` URL copied, else the
    URL fetched. Raises only :class:`Cancelled` and local I/O errors."""
    limits = ctx.limits
    try:
        if artifact.size is not None and offset == artifact.size and offset > 0:
            return Received(_rehash_partial(part))
        if urlsplit(artifact.url).scheme == "file":
            return Received(_copy_local(artifact, part, ctx))
        # The headers within a stall window of each request, the whole try within the
        # deadline, however slowly a server trickles them. _stream ends a try at its deadline
        # between two reads; the watchdog, a stall window later, ends one whose reads never
        # return.
        with deadline(headers=limits.stall_window, total=limits.deadline + limits.stall_window):
            try:
                return Received(
                    _attempt(
                        artifact, part, offset=offset, validator=validator, ctx=ctx, timing=timing
                    )
                )
            except TryAgain as exc:
                if expired():
                    exc.reason = (
                        f"ran past its deadline (headers within {limits.stall_window:g}s of "
                        f"asking, the whole try within {limits.deadline:g}s)"
                    )
                raise
    except TryAgain as exc:
        return Retry(
            exc.reason, retry_after=exc.retry_after, progress=exc.progress, reached=exc.reached
        )
    except StartOver as exc:
        return Restart(exc.reason, final=exc.final)
    except GiveUp as exc:
        return Fail(str(exc))


def _attempt(
    artifact: Artifact,
    part: Path,
    *,
    offset: int,
    validator: Validator | None,
    ctx: Context,
    timing: FileTiming,
) -> Body:
    response = open_url(artifact.url, range_headers(offset, validator), ctx)
    with contextlib.closing(response), _registered(response, ctx, timing):
        status = response.status_code
        if status == 416 and offset > 0:
            raise StartOver("server cannot continue the partial (416)", final=False)
        if status not in (200, 206):
            reason = f"HTTP {status} {response.reason or ''}".strip()
            if RetryPolicy.is_retryable_status(status):
                retry_after = parse_retry_after(
                    response.headers.get("Retry-After"), datetime.now(UTC)
                )
                raise TryAgain(reason, retry_after=retry_after)
            raise GiveUp(reason)
        if offset > 0:
            verdict, why = check_partial_response(
                status, response.headers, offset, artifact.size, validator
            )
            if verdict is ResumeVerdict.DISCARD:
                raise StartOver(why, final=False)
            if verdict is ResumeVerdict.RESTART:
                log.info("%s: %s; starting from zero", artifact.destination, why)
                ctx.progress.restart(artifact.destination)
                offset = 0
        elif status == 206:
            raise StartOver("206 to a request without Range", final=True)
        return _stream(artifact, part, offset=offset, response=response, ctx=ctx, timing=timing)


def _stream(
    artifact: Artifact,
    part: Path,
    *,
    offset: int,
    response: requests.Response,
    ctx: Context,
    timing: FileTiming,
) -> Body:
    encoding = content_encoding(response.headers)
    length_header = response.headers.get("Content-Length")
    length = int(length_header) if length_header and length_header.isdigit() else None
    hasher: Hasher | None = None
    if offset == 0:
        _start_partial(artifact, part, encoding=encoding, length=length, ctx=ctx)
        # The validator to resume with, only for an identity body.
        validator = strong_validator(response.headers) if encoding == "identity" else None
        _record_progress(artifact, 0, validator, ctx)
    else:
        validator = _current_validator(artifact, ctx)
        hasher = _hash_prefix(part, offset, ctx)
    cap = _try_cap(artifact, encoding, offset, length, ctx)
    receiver = _Receiver(artifact, ctx, timing, validator, offset)
    with part.open("r+b", buffering=0) as out:
        out.seek(offset)
        out.truncate()
        try:
            hashed = copy_hashing(
                receiver.reads(response.raw),
                out,
                limit=cap - offset,
                hasher=hasher,
                progress=receiver.advance,
            )
        except TooLarge:
            if artifact.size is None:
                raise StartOver(
                    f"server sent more than the {cap} bytes allowed for a file the plan gives "
                    "no size",
                    final=True,
                ) from None
            raise StartOver(f"server sent more than the plan's {cap} bytes", final=True) from None
        except (TryAgain, Cancelled):
            receiver.record()
            raise
        if length is not None and receiver.total < offset + length:
            receiver.record()
            raise receiver.try_again(
                f"connection closed after {receiver.total} of {offset + length} bytes"
            )
        os.fsync(out.fileno())
    return Body(sha256=hashed.sha256, size=receiver.total, encoding=encoding, resumed=offset > 0)


def _start_partial(
    artifact: Artifact, part: Path, *, encoding: str, length: int | None, ctx: Context
) -> None:
    """An empty partial for a body from byte zero, once its announced length is plausible."""
    if (
        encoding == "identity"
        and artifact.size is not None
        and length is not None
        and length != artifact.size
    ):
        raise StartOver(
            f"server announces {length} bytes, the plan says {artifact.size}", final=True
        )
    with part.open("wb"):
        pass


def _try_cap(
    artifact: Artifact, encoding: str, offset: int, length: int | None, ctx: Context
) -> int:
    """Where the partial must end at the latest: the plan's size (give or take an encoding),
    or for a file the plan gives no size, what the server announces within the limit."""
    cap = _body_cap(artifact.size, encoding, ctx.limits.max_unsized_bytes)
    if artifact.size is None and length is not None:
        if offset + length > cap:
            raise GiveUp(
                f"server announces {offset + length} bytes, more than the "
                f"{cap} allowed for a file the plan gives no size"
            )
        cap = offset + length
    return cap


class _Receiver:
    """One try's bytes as they arrive: what they add up to, the progress shown, the stall and
    deadline checks, and the checkpoint kept every so often (so a kill loses little)."""

    def __init__(
        self,
        artifact: Artifact,
        ctx: Context,
        timing: FileTiming,
        validator: Validator | None,
        offset: int,
    ) -> None:
        self.artifact = artifact
        self.ctx = ctx
        self.timing = timing
        self.validator = validator
        self.total = offset
        self.received = 0
        now = time.monotonic()
        self.deadline = now + ctx.limits.deadline
        self.meter = StallMeter(ctx.limits.stall_window, ctx.limits.stall_min_bytes, now)
        self.recorded = (now, offset)

    def reads(self, raw: urllib3.HTTPResponse) -> Iterator[bytes]:
        """The body's bytes as the connection gives them; a lost connection is a retry."""
        while True:
            try:
                chunk = raw.read1(_READ_SIZE, decode_content=False)
            except (
                requests.RequestException,
                urllib3.exceptions.HTTPError,
                OSError,
                ValueError,
            ) as exc:
                if self.ctx.cancel.is_set():
                    raise Cancelled("interrupted") from exc
                raise self.try_again(
                    f"connection lost after {self.total} bytes: {failure_reason(exc)}"
                ) from exc
            self.ctx.raise_if_cancelled()
            if not chunk:
                return
            yield chunk

    def try_again(self, reason: str) -> TryAgain:
        """A retry that counts as progress when this try got a stall window's worth of bytes."""
        limits = self.ctx.limits
        return TryAgain(
            reason, progress=self.received >= limits.stall_min_bytes, reached=self.total
        )

    def advance(self, count: int) -> None:
        """``count`` more bytes are in the partial."""
        limits = self.ctx.limits
        self.received += count
        self.total += count
        self.timing.network_bytes += count
        self.ctx.progress.advance(self.artifact.destination, count, network=True)
        now = time.monotonic()
        if self.meter.add(count, now):
            raise self.try_again(
                f"transfer stalled (under {limits.stall_min_bytes} bytes in "
                f"{limits.stall_window:g}s)"
            )
        if now > self.deadline:
            raise self.try_again(f"took longer than the {limits.deadline:g}s deadline")
        since, at = self.recorded
        if self.total - at >= limits.checkpoint_bytes or now - since >= limits.checkpoint_seconds:
            self.record()
            self.recorded = (now, self.total)

    def record(self) -> None:
        """Checkpoint how far the partial has come."""
        _record_progress(self.artifact, self.total, self.validator, self.ctx)


def _body_cap(size: int | None, encoding: str, unsized: int) -> int:
    """Most bytes a body may bring: the plan's size (``unsized`` when it gives none), plus a
    little when the server encoded it anyway (compressing incompressible data, like a wheel,
    makes it slightly larger)."""
    if size is None:
        size = unsized
    if encoding == "identity":
        return size
    return size + size // 64 + 4096


def _current_validator(artifact: Artifact, ctx: Context) -> Validator | None:
    record = ctx.checkpoint.get(artifact.destination)
    return None if record is None else record.validator


def _record_progress(
    artifact: Artifact, total: int, validator: Validator | None, ctx: Context
) -> None:
    ctx.checkpoint.record(
        ArtifactState.of(artifact, "partial", received=total, validator=validator)
    )


def _hash_prefix(part: Path, offset: int, ctx: Context) -> Hasher:
    hashed = hash_file(part, size=offset, cancel=ctx.raise_if_cancelled)
    if hashed.size < offset:
        raise StartOver("partial shrank while resuming", final=False)
    return hashed.hasher


def _copy_local(artifact: Artifact, part: Path, ctx: Context) -> Body:
    path = Path(unquote(urlsplit(artifact.url).path))
    limit = artifact.size if artifact.size is not None else ctx.limits.max_unsized_bytes
    try:
        with path.open("rb") as src, part.open("wb", buffering=0) as out:
            hashed = copy_hashing(
                read_chunks(src),
                out,
                limit=limit,
                cancel=ctx.raise_if_cancelled,
                progress=functools.partial(
                    ctx.progress.advance, artifact.destination, network=False
                ),
                fsync=True,
            )
    except TooLarge:
        raise StartOver(f"{path} is larger than the plan's size", final=True) from None
    except FileNotFoundError as exc:
        raise GiveUp(f"{path} does not exist") from exc
    except OSError as exc:
        raise TryAgain(f"cannot read {path}: {exc}") from exc
    return Body(sha256=hashed.sha256, size=hashed.size, encoding="identity", resumed=False)


def host_port(url: str) -> str:
    """``host[:port]`` of a URL, as the timings group it (``file`` for local files)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return "file"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if parts.port is None else f"{host}:{parts.port}"
