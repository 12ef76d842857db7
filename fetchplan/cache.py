"""fetchplan's cache directory: what lives there, and the stores that keep it.

The one place the layout is written down. Under the cache root (``--cache-dir``, else
:func:`default_cache_dir`), one subdirectory per section (:data:`SECTIONS`, which ``fetchplan
cache info|clean`` walk):

``sha256/`` (section ``artifacts``)
    Downloaded distributions, content-addressed: ``sha256/<aa>/<bb>/<hex digest>``, one file
    per content (:class:`ArtifactCache`). Shared by planner and executor.
``prepared-metadata/`` (section ``prepared``)
    Metadata an sdist's build backend prepared, by the sdist's sha256
    (:mod:`fetchplan.planner.sdist`).
``pages/`` (section ``pages``)
    Index project pages (:class:`PageCache`): ``pages/urls/<aa>/<key>``, what an index last
    answered for a page request (its caching header fields, when, and its body's sha256), keyed
    by the request (URL, ``Accept``, and a digest of the credentials sent, if any); and
    ``pages/parsed/<aa>/<key>``, a page's parsed form, keyed by its parser's name and inputs and
    by the sha256 of the body, so an unchanged page costs no parsing however it was fetched.
``metadata/`` (section ``metadata``)
    Core metadata of distributions (:class:`MetadataCache`), by the file's sha256 and the index
    that listed it: a file never changes, so it is never asked for again.
``store/`` (section ``store``)
    Unpacked wheels, by the wheel file's sha256, linked into environments by ``install`` and
    ``run`` (:class:`fetchplan.install.store.WheelStore`, which prunes and verifies itself:
    its entries appear whole by a directory rename, and hold files of any name).
``interpreters/`` (section ``interpreters``)
    What each target interpreter said about itself (``TargetInterpreter.query`` in
    :mod:`fetchplan.install.interpreter`), keyed by the interpreter binary's path and status,
    its venv settings, the kernel and the C library: a new virtual environment of a known
    base interpreter needs no subprocess.
``runs/`` (section ``runs``)
    The work directories of ``fetchplan run`` without ``-o`` or ``--dest`` (its plan and
    downloads, the files hard-linked from ``sha256/``), each removed when its run ends; one
    left by a killed run goes with ``fetchplan cache prune`` once untouched for a day.

Every store here is safe for several processes at once: an entry appears whole, by
``os.replace`` of a temporary file beside it (``.<name>.<random>.tmp``); readers never see a
partial one. Entries of ``pages/`` and ``metadata/`` carry a checksum (:func:`write_entry`):
a truncated, corrupt or foreign file is a miss, removed when found, never a wrong answer.
Nothing in the cache holds credentials: pages are keyed by a salted, slow digest of them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import platformdirs

from fetchplan._fs import fsync_dir, make_temp, read_chunks, write_verified
from fetchplan._parse import load_json
from fetchplan._urls import origin
from fetchplan.errors import FileFormatError

__all__ = [
    "SECTIONS",
    "ArtifactCache",
    "CacheSection",
    "Codec",
    "MetadataCache",
    "PageCache",
    "StoredPage",
    "credential_digest",
    "default_cache_dir",
    "page_key",
    "read_entry",
    "write_entry",
]

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """The user's cache directory for fetchplan (``$XDG_CACHE_HOME/fetchplan`` on Linux)."""
    return Path(platformdirs.user_cache_dir("fetchplan", appauthor=False))


class ArtifactCache:
    """sha256 -> file. Safe for several threads and processes: entries appear by rename."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def get(self, sha256: str) -> Path | None:
        """The cached file for ``sha256`` if present (not re-hashed: callers verify on use)."""
        path = self.path_for(sha256)
        return path if path.is_file() else None

    def add(self, source: Path, sha256: str) -> Path:
        """Copy ``source`` into the cache under ``sha256``, verifying it on the way in.

        Raises :class:`HashMismatch` (and adds nothing) when the content differs.
        """
        final = self.path_for(sha256)
        if final.is_file():
            return final
        with source.open("rb") as src:
            write_verified(read_chunks(src), final, sha256=sha256, shown=str(source))
        log.debug("cached %s as %s", source.name, sha256)
        return final

    def staging_dir(self) -> Path:
        """Where to write a temporary file for :meth:`adopt` (the cache's root, made if needed)."""
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root

    def adopt(self, staged: Path, sha256: str) -> Path:
        """Rename ``staged`` (written in :meth:`staging_dir`) into the cache under ``sha256``.

        The caller hashed the bytes as it wrote them and passes that digest: no second copy or
        hash. If the entry exists already, ``staged`` is removed and the entry kept.
        """
        final = self.path_for(sha256)
        if final.is_file():
            staged.unlink(missing_ok=True)
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        fsync_dir(final.parent)
        return final

    def materialize(self, sha256: str, target: Path) -> bool:
        """Place the cached file at ``target`` (hard link, else copy) without verifying it.

        Returns False when the cache has no such entry. The caller verifies ``target``.
        """
        cached = self.get(sha256)
        if cached is None:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(cached, target)
        except OSError:
            shutil.copyfile(cached, target)
        return True


# -- sections ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CacheSection:
    """One subdirectory of the cache root, as ``fetchplan cache`` shows and trims it."""

    name: str
    directory: str
    """Relative to the cache root."""
    description: str


SECTIONS: tuple[CacheSection, ...] = (
    CacheSection("artifacts", "sha256", "downloaded distributions, by sha256"),
    CacheSection("prepared", "prepared-metadata", "metadata prepared by sdist build backends"),
    CacheSection("pages", "pages", "index project pages: validators and parsed forms"),
    CacheSection("metadata", "metadata", "core metadata of distributions, by file sha256"),
    CacheSection("store", "store", "unpacked wheels"),
    CacheSection("runs", "runs", "work directories of runs in progress or killed"),
    CacheSection("interpreters", "interpreters", "descriptions of target interpreters"),
)
"""Every section of the cache, in the order ``fetchplan cache info`` lists them."""


# -- checksummed entries ----------------------------------------------------------------------

_MAGIC = b"fetchplan-cache-entry\x02"
# The payload's length and CRC-32: what finds a truncated or damaged entry (the cache is
# the user's own; nothing here defends against someone who can write to it, and a
# sha256 of each entry cost a warm plan a tenth of a second over its 16 MB of parsed pages).
_CHECK_SIZE = 12


def _check(payload: bytes) -> bytes:
    return len(payload).to_bytes(8, "big") + zlib.crc32(payload).to_bytes(4, "big")


def write_entry(path: Path, payload: bytes) -> None:
    """Write ``payload`` at ``path`` with its length and checksum, atomically (temporary
    file beside it, then ``os.replace``); raises ``OSError``.

    Not fsynced: an entry a crash truncates or empties fails its check and is a miss, and a
    plan writes hundreds of entries that a sync each would slow for nothing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_temp(path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(_MAGIC + _check(payload) + payload)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_entry(path: Path) -> bytes | None:
    """The payload of the entry at ``path``; None when there is none, or it is truncated,
    corrupt or no entry at all (such a file is removed)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.debug("cache entry %s unreadable: %s", path, exc)
        return None
    head = len(_MAGIC) + _CHECK_SIZE
    payload = data[head:]
    if data[: len(_MAGIC) - 1] == _MAGIC[:-1] and data[: len(_MAGIC)] != _MAGIC:
        # An entry of another format version (an older fetchplan's): a miss, not damage.
        log.debug("%s: cache entry of another format; replacing it", path)
        path.unlink(missing_ok=True)
        return None
    if data[: len(_MAGIC)] != _MAGIC or data[len(_MAGIC) : head] != _check(payload):
        log.warning("%s: corrupt cache entry; ignoring and removing it", path)
        path.unlink(missing_ok=True)
        return None
    return payload


def _touch(path: Path) -> None:
    """Mark an entry used now: ``fetchplan cache prune`` removes those long unused."""
    with contextlib.suppress(OSError):
        os.utime(path)


def _key_path(directory: Path, key: str) -> Path:
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return directory / digest[:2] / digest


@functools.lru_cache(maxsize=64)
def credential_digest(authorization: str, origin: str) -> str:
    """A digest of the ``Authorization`` value sent to ``origin``, for cache keys only.

    Salted with the origin and slow (PBKDF2), so that the cache, readable by whoever reads
    the user's files, does not give a cheap way to test guesses of a password.
    """
    salt = b"fetchplan-pages\0" + origin.encode("utf-8")
    return hashlib.pbkdf2_hmac("sha256", authorization.encode("utf-8"), salt, 50_000).hex()


def page_key(url: str, accept: str, authorization: str | None) -> str:
    """The page cache's key for a GET of ``url`` with ``Accept: accept`` and ``authorization``
    (the ``Authorization`` value sent, or None): the credentials only as a digest."""
    if authorization is None:
        return f"{url}\n{accept}\n"
    scheme, host, port = origin(url)
    return f"{url}\n{accept}\n{credential_digest(authorization, f'{scheme}://{host}:{port}')}"


# -- index pages ------------------------------------------------------------------------------

V = TypeVar("V")


class Codec(Protocol[V]):
    """How a page's body becomes the value the planner uses, and how that value is kept.

    ``name`` names the parsed form and its version: entries written under another name are
    never read as this one. ``context`` is everything :meth:`parse` depends on besides the
    body (the page's URL, the index, the project, the content type). The kept form is plain
    data (``to_data``/``from_data``), never pickle: a cache file must not be able to run code.
    """

    @property
    def name(self) -> str: ...

    @property
    def context(self) -> str: ...

    def parse(self, body: bytes) -> V: ...

    def to_data(self, value: V) -> bytes: ...

    def from_data(self, data: bytes) -> V: ...


@dataclass(frozen=True, slots=True)
class StoredPage:
    """What an index last answered for a page request (its body is kept parsed, by digest)."""

    url: str
    """The URL the body came from (after redirects); no credentials."""
    stored_at: float
    """When it was received (POSIX time)."""
    headers: Mapping[str, str]
    """Its caching header fields and ``Content-Type`` (names lower-cased)."""
    body_sha256: str


_PAGE_FORMAT = "fetchplan.page/1"


class PageCache:
    """Index pages by request, and their parsed forms by body digest (see the module doc).

    Thread-safe and safe for several processes: entries are immutable files replaced whole.
    ``stats`` counts what happened, for ``--timings``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._urls = root / "urls"
        self._parsed = root / "parsed"
        self._lock = threading.Lock()
        self.stats: Counter[str] = Counter()

    def count(self, what: str) -> None:
        with self._lock:
            self.stats[what] += 1

    def lookup(self, key: str) -> StoredPage | None:
        """The stored answer for the request ``key``, or None."""
        payload = read_entry(_key_path(self._urls, key))
        if payload is None:
            return None
        try:
            document: Any = load_json(payload, "page cache entry")
            if document["format"] != _PAGE_FORMAT or document["key"] != key:
                return None
            headers = document["headers"]
            if not isinstance(headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
            ):
                return None
            return StoredPage(
                url=str(document["url"]),
                stored_at=float(document["stored_at"]),
                headers=headers,
                body_sha256=str(document["body_sha256"]),
            )
        except (ValueError, KeyError, TypeError, FileFormatError):
            return None

    def store(self, key: str, page: StoredPage) -> None:
        """Keep ``page`` as the answer to the request ``key`` (an unwritable cache is logged)."""
        document = {
            "format": _PAGE_FORMAT,
            "key": key,
            "url": page.url,
            "stored_at": page.stored_at,
            "headers": dict(page.headers),
            "body_sha256": page.body_sha256,
        }
        self._write(_key_path(self._urls, key), json.dumps(document).encode("utf-8"))

    def forget(self, key: str) -> None:
        """Drop the stored answer for ``key`` (``no-store``, a page gone)."""
        try:
            _key_path(self._urls, key).unlink(missing_ok=True)
        except OSError as exc:
            log.debug("cannot remove a page entry: %s", exc)

    def parsed(self, codec: Codec[V], body_sha256: str) -> V | None:
        """The parsed form of the body ``body_sha256`` under ``codec``, or None."""
        path = _key_path(self._parsed, _parsed_key(codec, body_sha256))
        payload = read_entry(path)
        if payload is None:
            return None
        try:
            value = codec.from_data(payload)
        except Exception as exc:  # noqa: BLE001 - any unreadable entry is a miss
            log.warning("%s: unreadable parsed page (%s); parsing the page again", path, exc)
            path.unlink(missing_ok=True)
            return None
        _touch(path)
        return value

    def keep_parsed(self, codec: Codec[V], body_sha256: str, value: V) -> None:
        """Keep ``value``, parsed from the body ``body_sha256`` by ``codec``."""
        path = _key_path(self._parsed, _parsed_key(codec, body_sha256))
        self._write(path, codec.to_data(value))

    def _write(self, path: Path, payload: bytes) -> None:
        try:
            write_entry(path, payload)
        except OSError as exc:
            log.warning("%s: cannot write to the cache: %s", path, exc.strerror or exc)


def _parsed_key(codec: Codec[Any], body_sha256: str) -> str:
    return f"{codec.name}\0{codec.context}\0{body_sha256}"


# -- core metadata ----------------------------------------------------------------------------


class MetadataCache:
    """Core metadata bytes by the distribution file's sha256 and the index that listed it.

    Keyed by the index too: metadata read by range requests is not checked against the file's
    sha256 (only the whole file could be), so one index must not answer for another's files.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self.stats: Counter[str] = Counter()

    def _path(self, index: str, sha256: str) -> Path:
        return _key_path(self.root, f"{index}\0{sha256.lower()}")

    def get(self, index: str, sha256: str, *, count: bool = True) -> bytes | None:
        """The entry of the file ``sha256`` listed on ``index``, or None; ``count`` it in
        ``stats`` as a hit or a miss (not when it is read to be updated)."""
        path = self._path(index, sha256)
        raw = read_entry(path)
        if raw is not None:
            _touch(path)
        if count:
            with self._lock:
                self.stats["hits" if raw is not None else "misses"] += 1
        return raw

    def put(self, index: str, sha256: str, raw: bytes, *, what: str = "stored") -> None:
        """Keep ``raw`` as the entry of the file ``sha256`` listed on ``index`` (counted in
        ``stats`` as ``what``)."""
        path = self._path(index, sha256)
        try:
            write_entry(path, raw)
        except OSError as exc:
            log.warning("%s: cannot write to the cache: %s", path, exc.strerror or exc)
            return
        with self._lock:
            self.stats[what] += 1


# -- inspecting and trimming ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SectionUsage:
    section: CacheSection
    files: int
    bytes: int


def _files(directory: Path) -> Iterator[Path]:
    if not directory.is_dir():
        return
    for dirpath, _dirnames, filenames in os.walk(directory):
        for filename in filenames:
            yield Path(dirpath) / filename


def usage(root: Path, sections: tuple[CacheSection, ...] = SECTIONS) -> list[SectionUsage]:
    """Files and bytes per section under ``root``."""
    result: list[SectionUsage] = []
    for section in sections:
        files = size = 0
        for path in _files(root / section.directory):
            try:
                size += path.lstat().st_size
            except OSError:
                continue
            files += 1
        result.append(SectionUsage(section, files, size))
    return result


def clean(root: Path, sections: tuple[CacheSection, ...] = SECTIONS) -> tuple[int, int]:
    """Remove ``sections`` under ``root``; return (files, bytes) removed.

    A plan running meanwhile only misses what went.
    """
    removed = freed = 0
    for section in sections:
        directory = root / section.directory
        for path in _files(directory):
            try:
                size = path.lstat().st_size
                path.unlink()
            except OSError:
                continue
            removed += 1
            freed += size
        shutil.rmtree(directory, ignore_errors=True)
    return removed, freed


_CHECKSUMMED = ("pages", "metadata", "interpreters")
_STALE_TEMP_SECONDS = 3600.0
_STALE_RUN_SECONDS = 86400.0
"""A run's work directory where nothing changed for this long belongs to no running run."""


def prune(
    root: Path, *, unused_days: float | None = None, now: float | None = None
) -> tuple[int, int]:
    """Trim ``root``: temporary files left by interrupted writes (an hour old), corrupt
    entries of the checksummed sections (``pages``, ``metadata``, ``interpreters``), and with
    ``unused_days`` the entries of those sections not used for that long; and work
    directories of ``run`` untouched for a day (killed runs). Returns (files, bytes) removed."""
    now = time.time() if now is None else now
    removed, freed = _prune_runs(root / "runs", now)
    # Downloads are staged at the top (ArtifactCache.staging_dir), sections below.
    top = [entry for entry in root.iterdir() if entry.is_file()] if root.is_dir() else []
    # Not the store: a wheel's own files may be named ".something"; it prunes itself.
    sections = [section for section in SECTIONS if section.name != "store"]
    for section, paths in (
        (None, top),
        *((section, _files(root / section.directory)) for section in sections),
    ):
        if section is not None and section.name == "runs":
            continue
        for path in paths:
            try:
                stat = path.lstat()
            except OSError:
                continue
            temporary = path.name.startswith(".")
            if temporary:
                drop = now - stat.st_mtime > _STALE_TEMP_SECONDS
            elif section is not None and section.name in _CHECKSUMMED:
                drop = (
                    unused_days is not None and now - stat.st_mtime > unused_days * 86400
                ) or read_entry(path) is None
            else:
                drop = False
            if drop:
                try:
                    path.unlink(missing_ok=True)
                except OSError:
                    continue
                removed += 1
                freed += stat.st_size
    return removed, freed


def _prune_runs(runs: Path, now: float) -> tuple[int, int]:
    """Remove the work directories under ``runs`` whose newest entry is a day old."""
    removed = freed = 0
    for work in sorted(runs.iterdir()) if runs.is_dir() else ():
        try:
            entries = [(path, path.lstat()) for path in (work, *work.rglob("*"))]
        except OSError:
            continue  # changing as we look: a run's, or its removal
        if now - max(stat.st_mtime for _, stat in entries) <= _STALE_RUN_SECONDS:
            continue
        files = [stat.st_size for path, stat in entries if not path.is_dir()]
        shutil.rmtree(work, ignore_errors=True)
        if not work.exists():
            removed += len(files)
            freed += sum(files)
    return removed, freed
