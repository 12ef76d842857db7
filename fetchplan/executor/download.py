"""Obtaining one artifact: :func:`obtain` returns a verified file at its final path, or raises.

In order: a file already at the final name (re-hashed), the content-addressed cache
(materialised beside the final name, re-hashed), then the network. Bytes stream into
``<dest>/.fetchplan/partial/<name>.part`` while being hashed, capped at the plan's size; only
a partial whose sha256 and size match is fsynced and renamed to its final name with
``os.replace``, so nothing unverified ever carries a final name.

Network tries follow the :class:`RetryPolicy`; a partial is resumed with ``Range`` and
``If-Range`` when the checkpoint holds a strong validator for it. A partial whose content turns
out wrong is dropped and fetched once more from zero before the artifact fails.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import random
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase, HTTPBasicAuth

from fetchplan import __version__
from fetchplan._fs import CHUNK_SIZE, fsync_dir
from fetchplan.auth import CredentialStore
from fetchplan.cache import ArtifactCache
from fetchplan.errors import FetchplanError, HashMismatch
from fetchplan.executor.checkpoint import ArtifactState, CheckpointStore, ObtainedFrom, utc_now
from fetchplan.executor.limits import StallMeter, TransferLimits
from fetchplan.executor.progress import ProgressState
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
    "ArtifactFailed",
    "Cancelled",
    "Context",
    "FileTiming",
    "Verified",
    "build_session",
    "obtain",
]

log = logging.getLogger(__name__)

MAX_REDIRECTS = 10
_READ_SIZE = CHUNK_SIZE
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class ArtifactFailed(FetchplanError):
    """One artifact could not be obtained; ``str()`` names it and says why."""

    def __init__(self, destination: str, reason: str) -> None:
        self.destination = destination
        self.reason = reason
        self.timing: FileTiming | None = None
        super().__init__(f"{destination}: {reason}")


class Cancelled(FetchplanError):
    """The run was interrupted; partial files and the checkpoint were kept."""

    exit_code = 130


@dataclass(slots=True)
class FileTiming:
    """When and how one artifact was obtained (seconds since the run started)."""

    destination: str
    host: str
    size: int | None
    start: float = 0.0
    end: float = 0.0
    worker: str = ""
    connections: list[int] = field(default_factory=list)
    phases: list[tuple[str, float, float]] = field(default_factory=list)
    tries: int = 0
    retries: int = 0
    network_bytes: int = 0
    source: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "host": self.host,
            "size": self.size,
            "source": self.source,
            "start": round(self.start, 6),
            "end": round(self.end, 6),
            "worker": self.worker,
            "connections": list(self.connections),
            "tries": self.tries,
            "retries": self.retries,
            "network_bytes": self.network_bytes,
            "phases": [
                {"name": name, "start": round(s, 6), "end": round(e, 6)}
                for name, s, e in self.phases
            ],
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Verified:
    """An artifact whose file at ``path`` matched the plan when ``verified_at``."""

    artifact: Artifact
    path: Path
    sha256: str
    size: int
    source: ObtainedFrom
    verified_at: str
    timing: FileTiming


class _SocketRegistry:
    """Sockets being read, so an interrupt can wake workers blocked in ``recv``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()

    def add(self, sock: socket.socket | None) -> None:
        if sock is not None:
            with self._lock:
                self._sockets.add(sock)

    def discard(self, sock: socket.socket | None) -> None:
        if sock is not None:
            with self._lock:
                self._sockets.discard(sock)

    def abort_all(self) -> None:
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@dataclass(kw_only=True)
class Context:
    """What every worker shares: read-only settings plus thread-safe services."""

    destination: Path
    session: requests.Session
    credentials: CredentialStore
    checkpoint: CheckpointStore
    cache: ArtifactCache | None
    retry: RetryPolicy
    limits: TransferLimits
    progress: ProgressState
    trusted_hosts: frozenset[str] = frozenset()
    cancel: threading.Event = field(default_factory=threading.Event)
    random: Callable[[], float] = random.random
    clock_origin: float = field(default_factory=time.monotonic)
    sockets: _SocketRegistry = field(default_factory=_SocketRegistry)

    @property
    def partial_dir(self) -> Path:
        return self.destination / ".fetchplan" / "partial"

    def now(self) -> float:
        return time.monotonic() - self.clock_origin

    def interrupt(self) -> None:
        """Stop every worker soon: set the cancel flag and wake blocked reads."""
        self.cancel.set()
        self.sockets.abort_all()


def build_session(pool_size: int, hosts: int) -> requests.Session:
    """One keep-alive connection pool for all workers; retries are ours, not urllib3's."""
    session = requests.Session()
    adapter = HTTPAdapter(
        pool_connections=max(hosts, 1) + 2, pool_maxsize=max(pool_size, 1), max_retries=0
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(
        {
            "User-Agent": f"fetchplan/{__version__}",
            "Accept-Encoding": "identity",
            "Accept": "*/*",
        }
    )
    return session


# -- outcomes of one try -------------------------------------------------------------------


class _Retry(Exception):
    """Worth another try. ``progress``: the try added at least a stall window's worth of
    bytes to a resumable partial, so it does not use up one of the policy's attempts."""

    def __init__(self, reason: str, *, retry_after: float | None = None, progress: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.progress = progress


class _Discard(Exception):
    """The partial is wrong; drop it. ``final`` when this uses up the one fresh start."""

    def __init__(self, reason: str, *, final: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final


class _Fatal(Exception):
    pass


@dataclass(slots=True)
class _Body:
    sha256: str
    size: int
    encoding: str
    resumed: bool


# -- entry point -----------------------------------------------------------------------------


def obtain(artifact: Artifact, ctx: Context) -> Verified:
    """Put ``artifact`` at ``<destination>/<artifact.destination>``, verified, and return it.

    Raises :class:`ArtifactFailed` (with the reason) when it cannot, and :class:`Cancelled`
    when the run is interrupted. Partial bytes are kept for the next run unless they were
    proven wrong.
    """
    timing = FileTiming(
        destination=artifact.destination,
        host=_host_port(artifact.url),
        size=artifact.size,
        start=ctx.now(),
        worker=threading.current_thread().name,
    )
    final = ctx.destination / artifact.destination
    ctx.progress.begin(artifact.destination, artifact.size)
    try:
        found = _existing(artifact, final, ctx, timing) or _from_cache(artifact, final, ctx, timing)
        if found is None:
            found = _download(artifact, final, ctx, timing)
    except OSError as exc:
        timing.end = ctx.now()
        timing.error = f"local I/O error: {exc}"
        ctx.progress.fail(artifact.destination)
        failed = ArtifactFailed(artifact.destination, timing.error)
        failed.timing = timing
        raise failed from exc
    except ArtifactFailed as exc:
        timing.end = ctx.now()
        timing.error = exc.reason
        exc.timing = timing
        ctx.progress.fail(artifact.destination)
        raise
    except BaseException:
        ctx.progress.fail(artifact.destination)
        raise
    timing.end = ctx.now()
    timing.source = found.source
    ctx.progress.finish(artifact.destination, found.size)
    return found


def _hash_file(path: Path, ctx: Context, destination: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            if ctx.cancel.is_set():
                raise Cancelled("interrupted")
            digest.update(chunk)
            size += len(chunk)
            ctx.progress.advance(destination, len(chunk), network=False)
    return digest.hexdigest(), size


def _matches(artifact: Artifact, sha256: str, size: int) -> bool:
    if artifact.size is not None and size != artifact.size:
        return False
    return artifact.sha256 is None or sha256 == artifact.sha256


def _verified(
    artifact: Artifact,
    final: Path,
    *,
    sha256: str,
    size: int,
    source: ObtainedFrom,
    ctx: Context,
    timing: FileTiming,
) -> Verified:
    ctx.checkpoint.record(
        ArtifactState(
            artifact=artifact.destination,
            state="verified",
            sha256=artifact.sha256,
            size=artifact.size,
            url=artifact.url,
            bytes=size,
            source=source,
        ),
        durable=True,
    )
    return Verified(
        artifact=artifact,
        path=final,
        sha256=sha256,
        size=size,
        source=source,
        verified_at=utc_now(),
        timing=timing,
    )


def _existing(artifact: Artifact, final: Path, ctx: Context, timing: FileTiming) -> Verified | None:
    try:
        stat = final.lstat()
    except FileNotFoundError:
        return None
    if not S_ISREG(stat.st_mode):
        # A link or anything else at the final name is replaced, never followed.
        log.warning("%s: not a regular file; fetching it again", final)
        return None
    if artifact.size is not None and stat.st_size != artifact.size:
        log.warning("%s: existing file has the wrong size; fetching it again", final)
        return None
    started = ctx.now()
    sha256, size = _hash_file(final, ctx, artifact.destination)
    timing.phases.append(("verify", started, ctx.now()))
    if not _matches(artifact, sha256, size):
        log.warning("%s: existing file does not match the plan's sha256; fetching it again", final)
        ctx.progress.restart(artifact.destination)
        return None
    log.debug("%s: already in place and verified", artifact.destination)
    return _verified(
        artifact, final, sha256=sha256, size=size, source="existing", ctx=ctx, timing=timing
    )


def _from_cache(
    artifact: Artifact, final: Path, ctx: Context, timing: FileTiming
) -> Verified | None:
    expected = artifact.sha256
    if ctx.cache is None or expected is None:
        return None
    staging = ctx.partial_dir / f"{artifact.destination}.from-cache"
    staging.unlink(missing_ok=True)
    started = ctx.now()
    try:
        if not ctx.cache.materialize(expected, staging):
            return None
        sha256, size = _hash_file(staging, ctx, artifact.destination)
    except OSError as exc:
        log.warning("%s: cache unusable (%s); downloading", artifact.destination, exc)
        staging.unlink(missing_ok=True)
        ctx.progress.restart(artifact.destination)
        return None
    timing.phases.append(("verify", started, ctx.now()))
    if not _matches(artifact, sha256, size):
        log.warning("cache entry %s is corrupt; removing it", expected)
        staging.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            ctx.cache.path_for(expected).unlink()
        ctx.progress.restart(artifact.destination)
        return None
    os.replace(staging, final)
    fsync_dir(final.parent)
    log.debug("%s: taken from the cache", artifact.destination)
    return _verified(
        artifact, final, sha256=sha256, size=size, source="cache", ctx=ctx, timing=timing
    )


# -- the network -----------------------------------------------------------------------------


def _download(artifact: Artifact, final: Path, ctx: Context, timing: FileTiming) -> Verified:
    part = ctx.partial_dir / f"{artifact.destination}.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    fresh_starts = 0
    while True:
        if ctx.cancel.is_set():
            raise Cancelled("interrupted")
        timing.tries += 1
        offset, validator = _resume_point(artifact, part, ctx)
        started = ctx.now()
        try:
            if artifact.size is not None and offset == artifact.size:
                body = _rehash_partial(artifact, part, ctx)
            else:
                body = _attempt(
                    artifact, part, offset=offset, validator=validator, ctx=ctx, timing=timing
                )
            timing.phases.append(("download", started, ctx.now()))
            verify_started = ctx.now()
            body = _check_body(artifact, part, body)
        except _Retry as exc:
            timing.phases.append(("download", started, ctx.now()))
            if not exc.progress:
                failures += 1
            if ctx.cancel.is_set():
                raise Cancelled("interrupted") from None
            if not ctx.retry.may_retry(failures, timing.tries):
                _give_up(artifact, part, ctx, f"{exc.reason} (gave up after {timing.tries} tries)")
            wait = ctx.retry.delay(max(failures, 1), ctx.random(), exc.retry_after)
            log.info("%s: %s; retrying in %.2fs", artifact.destination, exc.reason, wait)
            timing.retries += 1
            ctx.progress.retried()
            if not ctx.retry.sleep(wait, ctx.cancel):
                raise Cancelled("interrupted") from None
            continue
        except _Discard as exc:
            timing.phases.append(("download", started, ctx.now()))
            _discard(artifact, part, ctx, exc.reason)
            if exc.final:
                fresh_starts += 1
                if fresh_starts > 1:
                    _give_up(artifact, part, ctx, exc.reason)
            elif timing.tries >= ctx.retry.max_tries:
                _give_up(artifact, part, ctx, exc.reason)
            log.info("%s: %s; starting again from zero", artifact.destination, exc.reason)
            continue
        except _Fatal as exc:
            timing.phases.append(("download", started, ctx.now()))
            _give_up(artifact, part, ctx, str(exc))
        os.replace(part, final)
        fsync_dir(final.parent)
        timing.phases.append(("verify", verify_started, ctx.now()))
        source: ObtainedFrom = "resumed" if body.resumed else "downloaded"
        verified = _verified(
            artifact,
            final,
            sha256=body.sha256,
            size=body.size,
            source=source,
            ctx=ctx,
            timing=timing,
        )
        _fill_cache(verified, ctx)
        return verified


def _give_up(artifact: Artifact, part: Path, ctx: Context, reason: str) -> NoReturn:
    kept = part.stat().st_size if part.exists() else 0
    previous = ctx.checkpoint.get(artifact.destination)
    ctx.checkpoint.record(
        ArtifactState(
            artifact=artifact.destination,
            state="failed",
            sha256=artifact.sha256,
            size=artifact.size,
            url=artifact.url,
            bytes=kept,
            validator=None if previous is None or kept == 0 else previous.validator,
            reason=reason,
        ),
        durable=True,
    )
    raise ArtifactFailed(artifact.destination, reason)


def _discard(artifact: Artifact, part: Path, ctx: Context, reason: str) -> None:
    part.unlink(missing_ok=True)
    ctx.progress.restart(artifact.destination)
    ctx.checkpoint.record(
        ArtifactState(
            artifact=artifact.destination,
            state="discarded",
            sha256=artifact.sha256,
            size=artifact.size,
            url=artifact.url,
            reason=reason,
        )
    )


def _resume_point(artifact: Artifact, part: Path, ctx: Context) -> tuple[int, Validator | None]:
    """Where the partial can continue from, and the validator to continue it with."""
    try:
        have = part.stat().st_size
    except FileNotFoundError:
        return 0, None
    record = ctx.checkpoint.get(artifact.destination)
    usable = (
        record is not None
        and record.state in ("partial", "failed")
        and record.matches(artifact.sha256, artifact.size, artifact.url)
    )
    too_long = artifact.size is not None and have > artifact.size
    complete = artifact.size is not None and have == artifact.size
    if usable and not too_long and (complete or (record is not None and record.validator)):
        ctx.progress.restart(artifact.destination)
        ctx.progress.advance(artifact.destination, have, network=False)
        return have, None if record is None else record.validator
    if have:
        log.debug("%s: partial not resumable; starting from zero", artifact.destination)
    part.unlink(missing_ok=True)
    return 0, None


def _rehash_partial(artifact: Artifact, part: Path, ctx: Context) -> _Body:
    digest = hashlib.sha256()
    size = 0
    with part.open("rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return _Body(sha256=digest.hexdigest(), size=size, encoding="identity", resumed=True)


def _check_body(artifact: Artifact, part: Path, body: _Body) -> _Body:
    """The body if it is the planned file; else its decoded form if that is; else discard."""
    if _matches(artifact, body.sha256, body.size):
        return body
    if body.encoding in _DECODERS:
        decoded = _decode_partial(artifact, part, body.encoding)
        if decoded is not None:
            return decoded
    if artifact.size is not None and body.size != artifact.size:
        raise _Discard(f"got {body.size} bytes, the plan says {artifact.size}", final=True)
    error = HashMismatch(artifact.destination, "sha256", artifact.sha256 or "", body.sha256)
    raise _Discard(str(error).split(": ", 1)[1], final=True)


def _decode_partial(artifact: Artifact, part: Path, encoding: str) -> _Body | None:
    """The server ignored ``Accept-Encoding: identity``: try the body decoded, size-capped."""
    limit = artifact.size if artifact.size is not None else None
    decoded_path = part.with_name(part.name + ".decoded")
    decoder = zlib.decompressobj(_DECODERS[encoding])
    digest = hashlib.sha256()
    size = 0
    try:
        with part.open("rb") as src, decoded_path.open("wb", buffering=0) as out:
            while chunk := src.read(CHUNK_SIZE):
                data = decoder.decompress(chunk, CHUNK_SIZE)
                while True:
                    size += len(data)
                    if limit is not None and size > limit:
                        raise _Discard("decoded body is larger than the plan's size", final=True)
                    digest.update(data)
                    out.write(data)
                    if not decoder.unconsumed_tail:
                        break
                    data = decoder.decompress(decoder.unconsumed_tail, CHUNK_SIZE)
            tail = decoder.flush()
            size += len(tail)
            digest.update(tail)
            out.write(tail)
            os.fsync(out.fileno())
    except (zlib.error, gzip.BadGzipFile, EOFError):
        decoded_path.unlink(missing_ok=True)
        return None
    except BaseException:
        decoded_path.unlink(missing_ok=True)
        raise
    body = _Body(sha256=digest.hexdigest(), size=size, encoding="identity", resumed=False)
    if not _matches(artifact, body.sha256, body.size):
        decoded_path.unlink(missing_ok=True)
        return None
    os.replace(decoded_path, part)
    log.info(
        "%s: server sent it %s-encoded; the decoded file matches", artifact.destination, encoding
    )
    return body


def _fill_cache(verified: Verified, ctx: Context) -> None:
    if ctx.cache is None:
        return
    try:
        ctx.cache.add(verified.path, verified.sha256)
    except (OSError, HashMismatch) as exc:
        log.warning("could not add %s to the cache: %s", verified.path.name, exc)


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


def _open(url: str, headers: dict[str, str], ctx: Context) -> requests.Response:
    """GET ``url``, following redirects ourselves: credentials go only to their own origin."""
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
            raise _Fatal(f"TLS error: {_short(exc)}") from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retry(f"connection failed: {_short(exc)}") from exc
        except requests.RequestException as exc:
            raise _Fatal(f"request failed: {_short(exc)}") from exc
        if response.status_code not in REDIRECT_STATUSES:
            return response
        location = response.headers.get("Location")
        response.close()
        try:
            current = redirect_target(current, location, ctx.trusted_hosts)
        except RedirectRefused as exc:
            raise _Fatal(str(exc)) from exc
        log.debug("redirected to %s", current)
    raise _Fatal(f"more than {MAX_REDIRECTS} redirects (a redirect loop?)")


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _attempt(
    artifact: Artifact,
    part: Path,
    *,
    offset: int,
    validator: Validator | None,
    ctx: Context,
    timing: FileTiming,
) -> _Body:
    if urlsplit(artifact.url).scheme == "file":
        return _copy_local(artifact, part, ctx)
    response = _open(artifact.url, range_headers(offset, validator), ctx)
    with contextlib.closing(response), _registered(response, ctx, timing):
        status = response.status_code
        if status == 416 and offset > 0:
            raise _Discard("server cannot continue the partial (416)", final=False)
        if status not in (200, 206):
            reason = f"HTTP {status} {response.reason or ''}".strip()
            if RetryPolicy.is_retryable_status(status):
                retry_after = parse_retry_after(
                    response.headers.get("Retry-After"), datetime.now(UTC)
                )
                raise _Retry(reason, retry_after=retry_after)
            raise _Fatal(reason)
        if offset > 0:
            verdict, why = check_partial_response(
                status, response.headers, offset, artifact.size, validator
            )
            if verdict is ResumeVerdict.DISCARD:
                raise _Discard(why, final=False)
            if verdict is ResumeVerdict.RESTART:
                log.info("%s: %s; starting from zero", artifact.destination, why)
                ctx.progress.restart(artifact.destination)
                offset = 0
        elif status == 206:
            raise _Discard("206 to a request without Range", final=True)
        return _stream(artifact, part, offset=offset, response=response, ctx=ctx, timing=timing)


def _stream(
    artifact: Artifact,
    part: Path,
    *,
    offset: int,
    response: requests.Response,
    ctx: Context,
    timing: FileTiming,
) -> _Body:
    encoding = content_encoding(response.headers)
    length_header = response.headers.get("Content-Length")
    length = int(length_header) if length_header and length_header.isdigit() else None
    if offset == 0:
        if (
            encoding == "identity"
            and artifact.size is not None
            and length is not None
            and length != artifact.size
        ):
            raise _Discard(
                f"server announces {length} bytes, the plan says {artifact.size}", final=True
            )
        validator = strong_validator(response.headers) if encoding == "identity" else None
        with part.open("wb"):
            pass
        ctx.checkpoint.record(
            ArtifactState(
                artifact=artifact.destination,
                state="partial",
                sha256=artifact.sha256,
                size=artifact.size,
                url=artifact.url,
                bytes=0,
                validator=validator,
            ),
            durable=True,
        )
        digest = hashlib.sha256()
    else:
        validator = _current_validator(artifact, ctx)
        digest = _hash_prefix(part, offset, ctx)
    cap = _body_cap(artifact.size, encoding)
    if cap is None and length is not None:
        cap = offset + length
    expected_end = offset + length if length is not None else None
    raw: urllib3.HTTPResponse = response.raw
    received = 0
    total = offset
    now = time.monotonic()
    deadline = now + ctx.limits.deadline
    meter = StallMeter(ctx.limits.stall_window, ctx.limits.stall_min_bytes, now)
    last_record = (now, total)
    with part.open("r+b", buffering=0) as out:
        out.seek(offset)
        out.truncate()
        try:
            while True:
                try:
                    chunk = raw.read1(_READ_SIZE, decode_content=False)
                except (
                    requests.RequestException,
                    urllib3.exceptions.HTTPError,
                    OSError,
                    ValueError,
                ) as exc:
                    if ctx.cancel.is_set():
                        raise Cancelled("interrupted") from exc
                    raise _Retry(
                        f"connection lost after {total} bytes: {_short(exc)}",
                        progress=received >= ctx.limits.stall_min_bytes,
                    ) from exc
                if ctx.cancel.is_set():
                    raise Cancelled("interrupted")
                if not chunk:
                    break
                if cap is not None and total + len(chunk) > cap:
                    raise _Discard(f"server sent more than the plan's {cap} bytes", final=True)
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                total += len(chunk)
                timing.network_bytes += len(chunk)
                ctx.progress.advance(artifact.destination, len(chunk), network=True)
                now = time.monotonic()
                if meter.add(len(chunk), now):
                    raise _Retry(
                        f"transfer stalled (under {ctx.limits.stall_min_bytes} bytes in "
                        f"{ctx.limits.stall_window:g}s)",
                        progress=received >= ctx.limits.stall_min_bytes,
                    )
                if now > deadline:
                    raise _Retry(
                        f"took longer than the {ctx.limits.deadline:g}s deadline",
                        progress=received >= ctx.limits.stall_min_bytes,
                    )
                if (
                    total - last_record[1] >= ctx.limits.checkpoint_bytes
                    or now - last_record[0] >= ctx.limits.checkpoint_seconds
                ):
                    _record_progress(artifact, total, validator, ctx)
                    last_record = (now, total)
        except (_Retry, Cancelled):
            _record_progress(artifact, total, validator, ctx)
            raise
        if expected_end is not None and total < expected_end:
            _record_progress(artifact, total, validator, ctx)
            raise _Retry(
                f"connection closed after {total} of {expected_end} bytes",
                progress=received >= ctx.limits.stall_min_bytes,
            )
        os.fsync(out.fileno())
    return _Body(sha256=digest.hexdigest(), size=total, encoding=encoding, resumed=offset > 0)


def _body_cap(size: int | None, encoding: str) -> int | None:
    """Most bytes a body may bring: the plan's size, plus a little when the server encoded
    it anyway (compressing incompressible data, like a wheel, makes it slightly larger)."""
    if size is None:
        return None
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
        ArtifactState(
            artifact=artifact.destination,
            state="partial",
            sha256=artifact.sha256,
            size=artifact.size,
            url=artifact.url,
            bytes=total,
            validator=validator,
        )
    )


def _hash_prefix(part: Path, offset: int, ctx: Context) -> Any:
    digest = hashlib.sha256()
    left = offset
    with part.open("rb") as fh:
        while left > 0:
            chunk = fh.read(min(CHUNK_SIZE, left))
            if not chunk:
                raise _Discard("partial shrank while resuming", final=False)
            if ctx.cancel.is_set():
                raise Cancelled("interrupted")
            digest.update(chunk)
            left -= len(chunk)
    return digest


def _copy_local(artifact: Artifact, part: Path, ctx: Context) -> _Body:
    path = Path(unquote(urlsplit(artifact.url).path))
    digest = hashlib.sha256()
    total = 0
    try:
        with path.open("rb") as src, part.open("wb", buffering=0) as out:
            while chunk := src.read(CHUNK_SIZE):
                if ctx.cancel.is_set():
                    raise Cancelled("interrupted")
                total += len(chunk)
                if artifact.size is not None and total > artifact.size:
                    raise _Discard(f"{path} is larger than the plan's size", final=True)
                out.write(chunk)
                digest.update(chunk)
                ctx.progress.advance(artifact.destination, len(chunk), network=False)
            os.fsync(out.fileno())
    except FileNotFoundError as exc:
        raise _Fatal(f"{path} does not exist") from exc
    except OSError as exc:
        raise _Retry(f"cannot read {path}: {exc}") from exc
    return _Body(sha256=digest.hexdigest(), size=total, encoding="identity", resumed=False)


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return "file"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if parts.port is None else f"{host}:{parts.port}"
