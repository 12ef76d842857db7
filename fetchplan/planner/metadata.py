"""Core metadata of a distribution, fetched the cheapest way that works.

For a wheel, in order: (a) a local copy whose sha256 matches (a destination directory or the
artifact cache); (b) the PEP 658/714 ``.metadata`` file, verified against its advertised hash;
(c) HTTP range requests for the wheel's tail (end records and central directory) and then its
``METADATA`` member (:mod:`fetchplan.planner.zipranges`); (d) the whole wheel, streamed into
the cache and verified. An sdist is fetched whole (sdists are small) and its ``PKG-INFO`` is
trusted only when PEP 643 says its dependencies are static.

Retries belong to the ``requests.Session`` the caller passes (it mounts an adapter with its
retry policy); the only fallback here is from range requests to a whole download when a server
ignores ``Range``. Messages name URLs through :func:`fetchplan._urls.redact`.
"""

from __future__ import annotations

import email.parser
import email.policy
import enum
import hashlib
import logging
import os
import re
import tarfile
import threading
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests
from packaging.metadata import InvalidMetadata, Metadata, parse_email
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from fetchplan._deadline import deadline, expired
from fetchplan._fs import CHUNK_SIZE, sha256_file
from fetchplan._parse import long_number
from fetchplan._reasons import failure_reason
from fetchplan._urls import redact
from fetchplan.cache import ArtifactCache
from fetchplan.errors import FetchplanError, HashMismatch, NetworkError
from fetchplan.planner import zipranges
from fetchplan.planner.http import (
    WHOLE_DEADLINE,
    BodyTooLarge,
    download_file,
    get_whole,
    join_limited,
)

__all__ = [
    "DEFAULT_TAIL_BYTES",
    "MAX_METADATA_BYTES",
    "PARSE_LOCK",
    "FetchedMetadata",
    "MetadataError",
    "MetadataSource",
    "SdistNeedsBuild",
    "UnusableMetadata",
    "head_size",
    "metadata_json",
    "parse_metadata",
    "sdist_metadata",
    "wheel_metadata",
]

log = logging.getLogger(__name__)

DEFAULT_TAIL_BYTES = 64 * 1024
"""First suffix range: holds the end records and central directory of most wheels."""

MAX_METADATA_BYTES = 16 * 1024 * 1024
"""Core metadata larger than this is refused (a real one is kilobytes; a bomb is not)."""

# Fields PEP 643 must see as static before an sdist's PKG-INFO can stand in for a build.
_STATIC_NEEDED = ("requires-dist", "requires-python")
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$")
# The empty line that ends the header fields of a metadata file, as the email parser finds it.
_END_OF_HEADERS = re.compile(r"\r\n\r\n|\n\n|\r\r|\r\n\n|\n\r\n")
# Exact bytes on the wire: a server compressing a range or an archive would change both.
_IDENTITY = {"Accept-Encoding": "identity"}
# The core metadata fields, each with whether it may appear more than once: what PEP 566's
# JSON form (and so pip's installation report) carries. Description is left out on purpose.
_JSON_FIELDS = (
    ("Metadata-Version", False),
    ("Name", False),
    ("Version", False),
    ("Dynamic", True),
    ("Platform", True),
    ("Supported-Platform", True),
    ("Summary", False),
    ("Description-Content-Type", False),
    ("Keywords", False),
    ("Home-page", False),
    ("Download-URL", False),
    ("Author", False),
    ("Author-email", False),
    ("Maintainer", False),
    ("Maintainer-email", False),
    ("License", False),
    ("License-Expression", False),
    ("License-File", True),
    ("Classifier", True),
    ("Requires-Dist", True),
    ("Requires-Python", False),
    ("Requires-External", True),
    ("Project-URL", True),
    ("Provides-Extra", True),
    ("Provides-Dist", True),
    ("Obsoletes-Dist", True),
)


class MetadataSource(enum.Enum):
    """Where the metadata came from, cheapest first."""

    LOCAL = "local"
    PEP658 = "pep658"
    RANGE = "range"
    WHOLE = "whole"
    SDIST = "sdist"
    CACHE = "cache"
    """From the metadata cache (:class:`~fetchplan.cache.MetadataCache`): no request."""


class MetadataError(FetchplanError):
    """Metadata could not be read or does not fit its file (message names the file or URL)."""


class UnusableMetadata(MetadataError):
    """A file's metadata cannot be had or prepared (invalid, inconsistent with its file name,
    or its build failed). The resolver takes that version as unusable and goes on, as pip and
    uv do, instead of failing the plan; the message names the file and the cause."""


class SdistNeedsBuild(UnusableMetadata):
    """An sdist's PKG-INFO does not reliably state its dependencies: only a build would."""

    def __init__(self, project: str, version: str, filename: str, reason: str) -> None:
        self.project = project
        self.version = version
        self.filename = filename
        self.reason = reason
        super().__init__(
            f"{filename}: {project} {version} needs a build to learn its dependencies ({reason})"
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class FetchedMetadata:
    """Parsed core metadata and what it cost to get."""

    metadata: Metadata
    raw: bytes
    source: MetadataSource
    requests: int
    """HTTP requests made (a retry inside the session's adapter counts once)."""
    bytes_received: int
    """Response body bytes read."""
    total_size: int | None
    """The whole artifact's size when learnt on the way, else None."""
    sha256: str | None
    """The whole artifact's sha256 when it was read whole (LOCAL, WHOLE, SDIST)."""
    cached_path: Path | None
    """The whole artifact in the cache, when it was downloaded into one."""


# --- metadata parsing ------------------------------------------------------------------------


# packaging parses marker strings with ast.literal_eval, and CPython 3.11 up to 3.11.8 can raise
# "SystemError: AST constructor recursion depth mismatch" when several threads build ASTs at
# once (python/cpython#106905); the bench saw it once in a large plan. Parsing is CPU-bound
# under the GIL anyway, so one parse at a time costs nothing; the parsed values stay cached
# in the Metadata object, so later readers parse nothing.
PARSE_LOCK = threading.Lock()


def header_fields(text: str) -> str:
    """The header fields of core metadata ``text``, without the message body.

    The body is the long description: often tens of kilobytes of prose that no resolver or
    plan reads, and most of the email parser's work. The header section ends at the first
    empty line, as for the email parser (a line of spaces continues the field above it).
    """
    if text.startswith(("\n", "\r")):
        return ""
    match = _END_OF_HEADERS.search(text)
    return text if match is None else text[: match.end()]


def parse_metadata(raw: bytes, *, where: str, project: str, version: str) -> Metadata:
    """Parse core metadata and check it names ``project`` ``version``.

    The fields a resolver reads (name, version, Requires-Dist, Requires-Python,
    Provides-Extra) are validated now, so later access cannot fail; other fields are not (old
    wheels carry harmless oddities). Raises :class:`MetadataError` naming ``where``.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnusableMetadata(f"{where}: metadata is not UTF-8 (byte {exc.start})") from None
    headers = header_fields(text)
    if long_number(headers):
        raise UnusableMetadata(f"{where}: metadata holds a number of more than 100 digits")
    fields, _unparsed = parse_email(headers)
    if fields.get("metadata_version") == "2.0":
        # 2.0 was a draft that old wheel builders wrote; 2.1 is its compatible successor.
        fields["metadata_version"] = "2.1"
    metadata = Metadata.from_raw(fields, validate=False)
    try:
        with PARSE_LOCK:
            name = metadata.name
            parsed_version = metadata.version
            _ = metadata.requires_dist, metadata.requires_python, metadata.provides_extra
    except InvalidMetadata as exc:
        raise UnusableMetadata(f"{where}: invalid metadata field {exc.field}: {exc}") from None
    try:
        want_version = Version(version)
    except InvalidVersion:
        raise UnusableMetadata(f"{where}: file name has an invalid version {version!r}") from None
    if canonicalize_name(name) != canonicalize_name(project) or parsed_version != want_version:
        raise UnusableMetadata(
            f"{where}: metadata says {name} {parsed_version} but the file name says "
            f"{project} {version}"
        )
    return metadata


def metadata_json(raw: bytes) -> dict[str, Any]:
    """Core metadata ``raw`` in its PEP 566 JSON form, as pip's installation report shows it.

    Keys are the field names in lower case with ``_`` for ``-``; fields that may repeat are
    lists, in file order; ``keywords`` is split on commas (else whitespace); values are the
    file's text unchanged (``requires_dist`` keeps every declared requirement with its marker
    unevaluated). The description (the message body, or a ``Description`` field) is left
    out: it is prose for people, often tens of kilobytes, and no installer reads it. ``raw``
    must be UTF-8, as :func:`parse_metadata` checks; undecodable bytes are replaced.
    """
    message = email.parser.Parser(policy=email.policy.compat32).parsestr(
        header_fields(raw.decode("utf-8", errors="replace"))
    )
    # One pass over the fields: get_all would scan every field once per name asked for.
    by_name: dict[str, list[Any]] = {}
    for name, value in message.items():
        by_name.setdefault(name.lower(), []).append(value)
    result: dict[str, Any] = {}
    for name, multiple in _JSON_FIELDS:
        values = by_name.get(name.lower())
        if not values:
            continue
        key = name.lower().replace("-", "_")
        if multiple:
            result[key] = [str(v) for v in values]
        elif key == "keywords":
            text = str(values[0])
            result[key] = [k.strip() for k in text.split(",")] if "," in text else text.split()
        else:
            result[key] = str(values[0])
    return result


def _wheel_identity(filename: str) -> tuple[str, str]:
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise MetadataError(f"{filename}: not a valid wheel file name ({exc})") from None
    return str(name), str(version)


def _sdist_identity(filename: str) -> tuple[str, str]:
    try:
        name, version = parse_sdist_filename(filename)
    except InvalidSdistFilename as exc:
        raise MetadataError(f"{filename}: not a supported sdist file name ({exc})") from None
    return str(name), str(version)


# --- local archives --------------------------------------------------------------------------


def _wheel_metadata_from_file(path: Path, project: str, version: str, where: str) -> bytes:
    """METADATA of a local wheel, through the same zip reader the range path uses.

    ``where`` names the wheel in errors (its URL when it was downloaded to a temporary name).
    """
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            tail_start = max(0, size - DEFAULT_TAIL_BYTES)
            fh.seek(tail_start)
            tail = fh.read()

            def read(start: int, end: int) -> bytes:
                fh.seek(start)
                return fh.read(end - start + 1)

            data, _ = zipranges.read_metadata_member(
                tail, size, read, project=project, version=version, max_size=MAX_METADATA_BYTES
            )
    except zipranges.ZipFormatError as exc:
        raise MetadataError(f"{where}: {exc}") from None
    except OSError as exc:
        raise MetadataError(f"{where}: cannot read: {exc.strerror or exc}") from None
    return data


def _read_capped(handle: IO[bytes], where: str) -> bytes:
    data = handle.read(MAX_METADATA_BYTES + 1)
    if len(data) > MAX_METADATA_BYTES:
        raise MetadataError(f"{where}: PKG-INFO is larger than {MAX_METADATA_BYTES} bytes")
    return data


def _sdist_pkg_info(path: Path, filename: str) -> bytes:
    """The top-level ``PKG-INFO`` of an sdist (read in memory; nothing is extracted)."""
    stem = filename.removesuffix(".tar.gz").removesuffix(".zip")
    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if _is_top_pkg_info(n)]
                chosen = _choose_pkg_info(names, stem, filename)
                info = zf.getinfo(chosen)
                if info.file_size > MAX_METADATA_BYTES:
                    raise MetadataError(f"{filename}: PKG-INFO is too large")
                with zf.open(info) as handle:
                    return _read_capped(handle, filename)
        with tarfile.open(path, "r:gz") as tf:
            members = {m.name: m for m in tf if m.isfile() and _is_top_pkg_info(m.name)}
            chosen = _choose_pkg_info(list(members), stem, filename)
            extracted = tf.extractfile(members[chosen])
            if extracted is None:
                raise MetadataError(f"{filename}: PKG-INFO is not a regular file")
            with extracted:
                return _read_capped(extracted, filename)
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise MetadataError(f"{filename}: cannot read the sdist: {exc}") from None


def _is_top_pkg_info(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and parts[1] == "PKG-INFO"


def _choose_pkg_info(names: list[str], stem: str, filename: str) -> str:
    if not names:
        # Old sdists (setup.py only, PKG-INFO in an .egg-info directory): pip asks the
        # backend, setuptools' legacy one when there is no [build-system]; so does the caller.
        project, version = _sdist_identity(filename)
        raise SdistNeedsBuild(project, version, filename, "no top-level PKG-INFO")
    preferred = [n for n in names if n == f"{stem}/PKG-INFO"]
    if preferred:
        return preferred[0]
    if len(names) > 1:
        raise UnusableMetadata(f"{filename}: several top-level PKG-INFO files: {sorted(names)}")
    return names[0]


def _find_local(
    sha256: str | None, local_files: Sequence[Path], cache: ArtifactCache | None
) -> Path | None:
    """A local file whose content hashes to ``sha256`` (every candidate is re-hashed)."""
    if sha256 is None:
        return None
    candidates = list(local_files)
    if cache is not None:
        cached = cache.get(sha256)
        if cached is not None:
            candidates.append(cached)
    for path in candidates:
        try:
            if path.is_file() and sha256_file(path) == sha256:
                return path
        except OSError as exc:
            log.debug("skipping local candidate %s: %s", path, exc)
            continue
        log.debug("local candidate %s does not match sha256 %s", path, sha256)
    return None


# --- HTTP ------------------------------------------------------------------------------------


@dataclass
class _Counter:
    requests: int = 0
    bytes_received: int = 0

    def received(self, size: int) -> None:
        self.bytes_received += size


class _RangesUnsupported(Exception):
    """The server answered a range request with the whole file (or cannot serve ranges)."""


def _get(
    session: requests.Session,
    url: str,
    counter: _Counter,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    counter.requests += 1
    try:
        return session.get(
            url, headers={**_IDENTITY, **(headers or {})}, stream=True, timeout=timeout
        )
    except requests.RequestException as exc:
        raise NetworkError(f"{redact(url)}: {failure_reason(exc)}") from None


def _iter_body(response: requests.Response, url: str, counter: _Counter) -> Iterator[bytes]:
    try:
        for chunk in response.iter_content(CHUNK_SIZE):
            counter.bytes_received += len(chunk)
            yield chunk
    except requests.RequestException as exc:
        raise NetworkError(f"{redact(url)}: download interrupted: {failure_reason(exc)}") from None


def _read_body(response: requests.Response, url: str, counter: _Counter, limit: int) -> bytes:
    """The whole body, refusing more than ``limit`` bytes."""
    try:
        return join_limited(_iter_body(response, url, counter), limit, url)
    except BodyTooLarge:
        raise MetadataError(f"{redact(url)}: response is larger than {limit} bytes") from None


def _parse_content_range(value: str | None, url: str) -> tuple[int, int, int]:
    match = _CONTENT_RANGE.match(value or "")
    if match is None or match[3] == "*":
        raise MetadataError(f"{redact(url)}: bad Content-Range {value!r} in a 206 response")
    start, end, total = int(match[1]), int(match[2]), int(match[3])
    if start > end or end >= total:
        raise MetadataError(f"{redact(url)}: bad Content-Range {value!r} in a 206 response")
    return start, end, total


class _RangeFetcher:
    """Range requests to one URL: status 206, the asked range, the same total every time."""

    def __init__(
        self, session: requests.Session, url: str, counter: _Counter, timeout: float
    ) -> None:
        self.session = session
        self.url = url
        self.counter = counter
        self.timeout = timeout
        self.total: int | None = None

    def tail(self, length: int) -> tuple[bytes, int]:
        """The last ``length`` bytes (all of a smaller file) and the file's size."""
        body, _ = self._fetch(f"bytes=-{length}", suffix=length)
        assert self.total is not None
        return body, self.total

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``start..end`` inclusive."""
        body, _ = self._fetch(f"bytes={start}-{end}", expect=(start, end))
        return body

    def _fetch(
        self, header: str, *, suffix: int | None = None, expect: tuple[int, int] | None = None
    ) -> tuple[bytes, int]:
        # However slowly the answer trickles in (see fetchplan._deadline).
        with deadline(headers=self.timeout, total=WHOLE_DEADLINE * self.timeout):
            try:
                return self._fetch_once(header, suffix=suffix, expect=expect)
            except NetworkError:
                if expired():
                    raise NetworkError(
                        f"{redact(self.url)}: no complete answer within its deadline"
                    ) from None
                raise

    def _fetch_once(
        self, header: str, *, suffix: int | None, expect: tuple[int, int] | None
    ) -> tuple[bytes, int]:
        url = redact(self.url)
        response = _get(self.session, self.url, self.counter, self.timeout, {"Range": header})
        with response:
            if response.status_code in (200, 416):
                # The server ignores ranges (or cannot serve this one). Closing the response
                # unread drops the connection instead of downloading the whole body.
                raise _RangesUnsupported(f"HTTP {response.status_code}")
            if response.status_code != 206:
                raise NetworkError(f"{url}: HTTP {response.status_code} for a range request")
            value = response.headers.get("Content-Range")
            start, end, total = _parse_content_range(value, self.url)
            if self.total is not None and total != self.total:
                raise MetadataError(
                    f"{url}: file size changed between requests ({self.total} then {total} bytes)"
                )
            if suffix is not None:
                expect = (max(0, total - suffix), total - 1)
            assert expect is not None
            if (start, end) != expect:
                raise MetadataError(
                    f"{url}: asked for bytes {expect[0]}-{expect[1]}, got Content-Range {value!r}"
                )
            body = _read_body(response, self.url, self.counter, end - start + 1)
            if len(body) != end - start + 1:
                raise MetadataError(f"{url}: range {start}-{end} truncated at {len(body)} bytes")
            self.total = total
            return body, start


def _by_ranges(
    fetcher: _RangeFetcher, project: str, version: str, tail_bytes: int
) -> tuple[bytes, int, str | None]:
    """METADATA through range requests; also the sha256 when the tail was the whole file."""
    tail, total = fetcher.tail(tail_bytes)
    try:
        data, _ = zipranges.read_metadata_member(
            tail,
            total,
            fetcher.read,
            project=project,
            version=version,
            max_size=MAX_METADATA_BYTES,
        )
    except zipranges.ZipFormatError as exc:
        raise MetadataError(f"{redact(fetcher.url)}: {exc}") from None
    whole = hashlib.sha256(tail).hexdigest() if len(tail) == total else None
    return data, total, whole


# --- whole downloads -------------------------------------------------------------------------


@contextmanager
def _downloaded(
    session: requests.Session,
    url: str,
    *,
    sha256: str | None,
    cache: ArtifactCache | None,
    counter: _Counter,
    timeout: float,
) -> Iterator[tuple[Path, str, int, Path | None]]:
    """Download ``url`` whole (:func:`~fetchplan.planner.http.download_file`, at most
    :data:`~fetchplan._limits.MAX_UNSIZED_BYTES`), verified, into the cache when there is one.

    Yields the readable path (the cache entry, else the temporary file), its sha256, its size
    and the cache path (or None). A mismatch with a known ``sha256`` raises
    :class:`HashMismatch` and keeps nothing.
    """
    counter.requests += 1
    staging = cache.staging_dir() if cache is not None else None
    with ExitStack() as stack:
        try:
            path, hashed = stack.enter_context(
                download_file(
                    session, url, staging, sha256=sha256, timeout=timeout, received=counter.received
                )
            )
        except BodyTooLarge as exc:
            raise MetadataError(str(exc)) from None
        # Hashed while written: the file moves into the cache as it is, no second copy.
        cached = cache.adopt(path, hashed.sha256) if cache is not None else None
        yield (cached if cached is not None else path), hashed.sha256, hashed.size, cached


def download_whole(
    session: requests.Session,
    url: str,
    *,
    sha256: str | None,
    cache: ArtifactCache | None,
    timeout: float = 30.0,
) -> str:
    """Fetch ``url`` whole into ``cache`` (verified when ``sha256`` is known); return its sha256."""
    with _downloaded(
        session, url, sha256=sha256, cache=cache, counter=_Counter(), timeout=timeout
    ) as (_, actual, _, _):
        return actual


# --- public entry points ---------------------------------------------------------------------


def _pep658(
    session: requests.Session,
    metadata_url: str,
    metadata_sha256: str | None,
    counter: _Counter,
    timeout: float,
) -> bytes | None:
    """The ``.metadata`` file's bytes, verified; None when the index has no such file."""
    where = redact(metadata_url)
    counter.requests += 1
    try:
        response = get_whole(
            session, metadata_url, headers=_IDENTITY, timeout=timeout, limit=MAX_METADATA_BYTES
        )
    except BodyTooLarge:
        raise MetadataError(
            f"{where}: response is larger than {MAX_METADATA_BYTES} bytes"
        ) from None
    except requests.RequestException as exc:
        raise NetworkError(f"{where}: {failure_reason(exc)}") from None
    if response.status_code in (404, 410):
        log.debug("%s: not found, reading the wheel instead", where)
        return None
    if response.status_code != 200:
        raise NetworkError(f"{where}: HTTP {response.status_code}")
    raw = response.content
    counter.bytes_received += len(raw)
    if metadata_sha256 is not None:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != metadata_sha256.lower():
            raise HashMismatch(where, "sha256", metadata_sha256.lower(), actual)
    return raw


def _result(
    raw: bytes,
    source: MetadataSource,
    *,
    where: str,
    project: str,
    version: str,
    counter: _Counter | None = None,
    total_size: int | None = None,
    sha256: str | None = None,
    cached_path: Path | None = None,
) -> FetchedMetadata:
    """``raw`` parsed (and checked to name ``project`` ``version``), with what getting it cost."""
    return FetchedMetadata(
        metadata=parse_metadata(raw, where=where, project=project, version=version),
        raw=raw,
        source=source,
        requests=counter.requests if counter is not None else 0,
        bytes_received=counter.bytes_received if counter is not None else 0,
        total_size=total_size,
        sha256=sha256,
        cached_path=cached_path,
    )


def _local_result(
    raw: bytes, local: Path, *, filename: str, project: str, version: str, sha256: str | None
) -> FetchedMetadata:
    """The :class:`FetchedMetadata` for ``raw`` read from the local file ``local`` (no requests)."""
    return _result(
        raw,
        MetadataSource.LOCAL,
        where=filename,
        project=project,
        version=version,
        total_size=local.stat().st_size,
        sha256=sha256,
    )


def wheel_metadata(
    session: requests.Session,
    *,
    url: str,
    filename: str,
    sha256: str | None,
    metadata_url: str | None,
    metadata_sha256: str | None,
    local_files: Sequence[Path] = (),
    cache: ArtifactCache | None = None,
    timeout: float = 30.0,
    tail_bytes: int = DEFAULT_TAIL_BYTES,
) -> FetchedMetadata:
    """Core metadata of the wheel ``filename`` at ``url``, by the cheapest way that works.

    Tries a local file matching ``sha256`` (``local_files``, then the cache), then
    ``metadata_url`` (PEP 658; verified against ``metadata_sha256`` when given; a 404 falls
    through), then range requests, then the whole wheel (into ``cache`` when given). Raises
    :class:`MetadataError` (bad archive, bad Content-Range, metadata naming another project or
    version), :class:`HashMismatch` or :class:`NetworkError`, each naming the file or URL.
    """
    project, version = _wheel_identity(filename)
    sha256 = None if sha256 is None else sha256.lower()
    local = _find_local(sha256, local_files, cache)
    if local is not None:
        raw = _wheel_metadata_from_file(local, project, version, str(local))
        return _local_result(
            raw, local, filename=filename, project=project, version=version, sha256=sha256
        )
    counter = _Counter()
    if metadata_url is not None:
        raw_658 = _pep658(session, metadata_url, metadata_sha256, counter, timeout)
        if raw_658 is not None:
            return _result(
                raw_658,
                MetadataSource.PEP658,
                where=f"{filename} (from {redact(metadata_url)})",
                project=project,
                version=version,
                counter=counter,
            )
    fetcher = _RangeFetcher(session, url, counter, timeout)
    try:
        raw, total, whole_sha = _by_ranges(fetcher, project, version, tail_bytes)
    except _RangesUnsupported as exc:
        log.info("%s: range request refused (%s), downloading the whole wheel", redact(url), exc)
    else:
        if whole_sha is not None and sha256 is not None and whole_sha != sha256:
            raise HashMismatch(redact(url), "sha256", sha256, whole_sha)
        return _result(
            raw,
            MetadataSource.RANGE,
            where=filename,
            project=project,
            version=version,
            counter=counter,
            total_size=total,
            sha256=whole_sha,
        )
    with _downloaded(
        session, url, sha256=sha256, cache=cache, counter=counter, timeout=timeout
    ) as (path, digest, size, kept):
        raw = _wheel_metadata_from_file(path, project, version, redact(url))
    return _result(
        raw,
        MetadataSource.WHOLE,
        where=filename,
        project=project,
        version=version,
        counter=counter,
        total_size=size,
        sha256=digest,
        cached_path=kept,
    )


def _check_static(raw: bytes, project: str, version: str, filename: str) -> None:
    """Raise :class:`SdistNeedsBuild` unless PEP 643 makes the dependencies trustworthy."""
    fields, _ = parse_email(raw.decode("utf-8", errors="replace"))
    declared = fields.get("metadata_version")
    try:
        new_enough = declared is not None and Version(declared) >= Version("2.2")
    except InvalidVersion:
        new_enough = False
    if not new_enough:
        raise SdistNeedsBuild(
            project, version, filename, f"PKG-INFO Metadata-Version {declared or 'missing'} < 2.2"
        )
    dynamic = {field.lower() for field in fields.get("dynamic", [])}
    marked = [field for field in _STATIC_NEEDED if field in dynamic]
    if marked:
        listed = ", ".join(marked)
        raise SdistNeedsBuild(project, version, filename, f"PKG-INFO marks {listed} as Dynamic")


def sdist_metadata(
    session: requests.Session,
    *,
    url: str,
    filename: str,
    sha256: str | None,
    local_files: Sequence[Path] = (),
    cache: ArtifactCache | None = None,
    timeout: float = 30.0,
) -> FetchedMetadata:
    """Core metadata of the sdist ``filename`` (``.tar.gz`` or ``.zip``) from its PKG-INFO.

    The sdist is read from a local file matching ``sha256`` or downloaded whole (into
    ``cache`` when given). PKG-INFO is accepted only with Metadata-Version >= 2.2 and neither
    Requires-Dist nor Requires-Python marked ``Dynamic`` (PEP 643); otherwise raises
    :class:`SdistNeedsBuild`. Other failures as for :func:`wheel_metadata`.
    """
    project, version = _sdist_identity(filename)
    sha256 = None if sha256 is None else sha256.lower()
    local = _find_local(sha256, local_files, cache)
    if local is not None:
        raw = _sdist_pkg_info(local, filename)
        _check_static(raw, project, version, filename)
        return _local_result(
            raw, local, filename=filename, project=project, version=version, sha256=sha256
        )
    counter = _Counter()
    with _downloaded(
        session, url, sha256=sha256, cache=cache, counter=counter, timeout=timeout
    ) as (path, digest, size, kept):
        raw = _sdist_pkg_info(path, filename)
    _check_static(raw, project, version, filename)
    return _result(
        raw,
        MetadataSource.SDIST,
        where=filename,
        project=project,
        version=version,
        counter=counter,
        total_size=size,
        sha256=digest,
        cached_path=kept,
    )


def head_size(session: requests.Session, url: str, timeout: float) -> int | None:
    """The ``Content-Length`` of a HEAD request to ``url`` (redirects followed), else None.

    Only feeds a size column: any failure is logged and answered with None.
    """
    try:
        response = session.head(url, allow_redirects=True, timeout=timeout, headers=_IDENTITY)
    except requests.RequestException as exc:
        log.warning("%s: HEAD failed: %s", redact(url), failure_reason(exc))
        return None
    with response:
        length = response.headers.get("Content-Length", "")
        if response.status_code != 200 or not length.isdigit():
            log.debug("%s: no size from HEAD (HTTP %s)", redact(url), response.status_code)
            return None
        return int(length)
