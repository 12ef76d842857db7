"""Package index pages: pure parsers (PEP 503 HTML, PEP 691 JSON) and a thin client.

A project page is read in two steps, because a real index lists every file a project ever
released (thousands, in a 2 MB page) and a resolution looks at a handful of versions:

1. :func:`compact_json_page` / :func:`compact_html_page` read the page once, cheaply, into a
   :class:`CompactPage`: the files grouped by the version their file name shows (the name split
   at its dashes, without validation; files of other projects and of no distribution format
   left out), each file kept as the page gave it: a version's file objects as one JSON array,
   decoded when the version is read. A JSON page is scanned with msgspec, which finds each
   file's object and decodes only its ``filename``. No file name is validated, no URL joined,
   no tag parsed. (PEP 700's ``versions`` list is not read: the files have to be grouped by
   version anyway, and splitting their names costs less than a millisecond a thousand.)
2. :class:`ProjectPage` parses each distinct version string once, orders the versions, and
   turns the files of one version into :class:`Link` values when :meth:`ProjectPage.links_for`
   first asks for that version. Every check applies then, to every file of that version:
   unsafe file names are skipped, URLs are joined and stripped of credentials, hashes are kept
   only when strong and well formed, and a malformed entry raises :class:`IndexPageError`
   naming the page and the field. A malformed entry of a version nobody asks for costs nothing
   and fails nothing.

:attr:`ProjectPage.links` still gives every file at once, with every check, as
:func:`parse_json_page` and :func:`parse_html_page` do (find-links pages, tools listing files).

The compact form is plain data for a persistent page cache: :meth:`CompactPage.to_data` gives
nested tuples of ``str``, ``int``, ``bytes`` and ``None`` (one ``bytes`` a release, so a 2 MB
page is written and read back in about a millisecond: MessagePack or ``marshal``), and
:meth:`CompactPage.from_data` takes that back, checking its shape (raising
:class:`CompactPageError` for anything else, so a damaged cache entry is a miss). A cached
compact page was built for one page URL and one project: key it by both (and by the body's
digest), then wrap it in a :class:`ProjectPage`. :class:`CompactPageCodec` does all of that
as bytes (MessagePack), in the shape of a page cache's codec (``name``, ``context``, ``parse``,
``to_data``, ``from_data``).

:class:`IndexClient` fetches project pages from ``http(s)://`` and ``file://`` indexes (asking
for JSON first by content negotiation) and reads find-links locations (a directory or an HTML
page). It is safe to call from several threads at once: see :mod:`fetchplan.planner.http` for
the session, and find-links pages are read once under a lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import quote, unquote, urldefrag, urljoin, urlsplit
from urllib.request import pathname2url, url2pathname

import msgspec
import requests
from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version
from requests.utils import get_encoding_from_headers

from fetchplan._limits import MAX_PAGE_BYTES
from fetchplan._parse import load_json, long_number
from fetchplan._reasons import failure_reason
from fetchplan._urls import redact, split_credentials
from fetchplan.auth import StoreAuth
from fetchplan.cache import PageCache, StoredPage, page_key
from fetchplan.errors import FetchplanError, FileFormatError, NetworkError
from fetchplan.planner import httpcache
from fetchplan.planner.http import BodyTooLarge, Fetched, get_whole
from fetchplan.planner.sources import ACCEPT, HTML_TYPE, JSON_TYPE, IndexSource, source_for
from fetchplan.planner.timings import Timings

__all__ = [
    "ACCEPT",
    "COMPACT_FORMAT",
    "LEGACY_SDIST_SUFFIXES",
    "SDIST_SUFFIXES",
    "CompactPage",
    "CompactPageCodec",
    "CompactPageError",
    "IndexClient",
    "IndexPageError",
    "IndexSource",
    "IndexUnavailable",
    "Link",
    "ProjectPage",
    "ProjectStatus",
    "compact_html_page",
    "compact_json_page",
    "compact_page",
    "file_url_path",
    "link_from_filename",
    "links_from_directory",
    "parse_html_page",
    "parse_json_page",
    "source_for",
]

log = logging.getLogger(__name__)


# Hash algorithms we keep from an index: those strong enough to pin a file by.
_STRONG_HASHES = ("sha256", "sha384", "sha512")
_NOT_FOUND = (404, 410)

DistKind = Literal["wheel", "sdist", "directory", "vcs"]

SDIST_SUFFIXES = (".tar.gz", ".zip")
"""The sdist archives fetchplan reads and builds (PEP 625 names ``.tar.gz`` only)."""
LEGACY_SDIST_SUFFIXES = (".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tgz", ".tar", ".tar.zst")
"""Older sdist archives some indexes still list; recognised only to be rejected by name."""


class IndexPageError(FetchplanError):
    """An index page could not be understood; names its URL."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"malformed index page {redact(url)}: {reason}")


class IndexUnavailable(NetworkError):
    """An index did not answer usefully, after the retries the session allows."""


def _read_local_page(path: Path, url: str) -> bytes:
    """A local index page or find-links file, refused past :data:`MAX_PAGE_BYTES` (as a page
    from a server is) before more than that is read."""
    with path.open("rb") as f:
        data = f.read(MAX_PAGE_BYTES + 1)
    if len(data) > MAX_PAGE_BYTES:
        raise IndexUnavailable(
            f"{redact(url)}: larger than the {MAX_PAGE_BYTES // (1024 * 1024)} MiB an index "
            "page may have"
        )
    return data


ProjectStatus = tuple[str, str | None]
"""A PEP 792 project status other than ``active``, and the index's reason (or None)."""

PROJECT_STATUSES = ("active", "archived", "quarantined", "deprecated")


def _project_status(status: object, reason: object, url: str) -> ProjectStatus | None:
    """The status a page states, when it is one PEP 792 defines other than ``active``."""
    if not isinstance(status, str) or status == "active":
        return None
    if status not in PROJECT_STATUSES:
        log.debug("ignoring the unknown project status %r on %s", status[:40], redact(url))
        return None
    if not isinstance(reason, str) or not reason.strip():
        return status, None
    # Free text from the index, shown in audits: one printable line.
    shown = "".join(c if c.isprintable() else " " for c in reason[:500])
    return status, shown.strip()


@dataclass(frozen=True, slots=True)
class Link:
    """One distribution file an index lists. ``url`` is absolute and carries no credentials."""

    filename: str
    url: str
    index: str
    name: NormalizedName
    version: Version
    kind: DistKind
    tags: frozenset[Tag] = frozenset()
    build: tuple[int, str] | tuple[()] = ()
    hashes: Mapping[str, str] = field(default_factory=dict, hash=False)
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    size: int | None = None
    metadata_url: str | None = None
    metadata_sha256: str | None = None
    upload_time: str | None = None
    provenance: str | None = None
    project_status: ProjectStatus | None = None
    """The project's PEP 792 status on the page this link is from, when not ``active``."""

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("sha256")

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file:")

    @property
    def tag_text(self) -> str:
        """A wheel's compressed tag set as its file name writes it (``py3-none-any``); an
        sdist has none (``""``)."""
        if self.kind != "wheel":
            return ""
        return self.filename[:-4].split("-", self.filename.count("-") - 2)[-1]


def _clean_filename(filename: str) -> str | None:
    # A hostile page must not steer a file outside the destination directory.
    if not filename or "/" in filename or "\\" in filename or filename.startswith("."):
        return None
    if "\x00" in filename:
        return None
    return filename


def link_from_filename(
    filename: str,
    url: str,
    index: str,
    *,
    project: NormalizedName | None = None,
    **fields: Any,
) -> Link | None:
    """A :class:`Link` for ``filename``, or None when it is no wheel/sdist (of ``project``)."""
    clean = _clean_filename(filename)
    if clean is None:
        log.debug("skipping unsafe file name %r on %s", filename, index)
        return None
    requires_python = fields.get("requires_python")
    if long_number(clean) or (isinstance(requires_python, str) and long_number(requires_python)):
        log.debug("skipping %r on %s: a number of more than 100 digits", filename, index)
        return None
    try:
        if clean.endswith(".whl"):
            name, version, build, tags = parse_wheel_filename(clean)
            link = Link(
                filename=clean,
                url=url,
                index=index,
                name=name,
                version=version,
                kind="wheel",
                tags=tags,
                build=build,
                **fields,
            )
        elif clean.endswith(SDIST_SUFFIXES + LEGACY_SDIST_SUFFIXES):
            # A legacy archive becomes a link too, so its version is listed as rejected (with
            # the reason) instead of vanishing; it is never chosen (see candidates.py).
            legacy = next((s for s in LEGACY_SDIST_SUFFIXES if clean.endswith(s)), None)
            as_tar_gz = clean if legacy is None else clean.removesuffix(legacy) + ".tar.gz"
            name, version = parse_sdist_filename(as_tar_gz)
            link = Link(
                filename=clean,
                url=url,
                index=index,
                name=name,
                version=version,
                kind="sdist",
                **fields,
            )
        else:
            return None
    except (InvalidWheelFilename, InvalidSdistFilename) as exc:
        log.debug("skipping %s: %s", filename, exc)
        return None
    if project is not None and link.name != project:
        return None
    return link


def _hashes_from_fragment(fragment: str) -> dict[str, str]:
    algo, sep, value = fragment.partition("=")
    algo = algo.lower()
    if sep and algo in _STRONG_HASHES and _is_hex(value):
        return {algo: value.lower()}
    return {}


_HEX = re.compile(r"[0-9a-fA-F]+")


def _is_hex(value: str) -> bool:
    return _HEX.fullmatch(value) is not None


# What RFC 3986 allows in a URL as it is (letters and digits besides); anything else in a link
# is percent-encoded, as pip does, so the plan holds the URL a request would send.
_URL_SAFE = "-._~:/?#[]@!$&'()*+,;=%"


def _absolute(base: str, href: str) -> tuple[str, str]:
    """Join ``href`` to ``base``; return (url without credentials or fragment, fragment).

    An href that is a directory path and a plain last segment (``../../files/x.whl#sha256=``,
    as index pages write them) joins as its directory joined once per page and directory,
    then the segment: the same URL (quoting works character by character; a plain segment
    after a path ending in ``/`` is only appended), at a tenth of the cost of joining
    thousands of whole hrefs.
    """
    stripped = href.strip()
    head, hash_sign, fragment = stripped.partition("#")
    directory, slash, name = head.rpartition("/")
    # Not after "//": there the segment is a host ("https://files.test").
    plain = slash and not directory.endswith("/") and name not in (".", "..")
    if plain and _PLAIN_SEGMENT.fullmatch(name):
        key = (base, directory)
        prefix = _JOINED.get(key)
        if prefix is None:
            prefix = _absolute_whole(base, directory + "/")[0]
            if len(_JOINED) > 4096:
                _JOINED.clear()
            _JOINED[key] = prefix
        if prefix.endswith("/"):
            return prefix + name, quote(fragment, safe=_URL_SAFE) if hash_sign else ""
    return _absolute_whole(base, stripped)


# A path segment that joining leaves as it is and quoting does not change: no "?", ";",
# "#" or "/", nothing to percent-encode.
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,=:@%-]+")
_JOINED: dict[tuple[str, str], str] = {}


def _absolute_whole(base: str, href: str) -> tuple[str, str]:
    joined = quote(urljoin(base, href), safe=_URL_SAFE)
    without, fragment = urldefrag(joined)
    clean, creds = split_credentials(without)
    if creds is not None:
        log.debug("dropping credentials written into a link on %s", redact(base))
    return clean, fragment


def _metadata_ref(value: Any, file_url: str) -> tuple[str | None, str | None]:
    """(metadata URL, its sha256) from a PEP 658/714 attribute value or JSON field."""
    if value is None or value is False:
        return None, None
    if value is True:
        return file_url + ".metadata", None
    if isinstance(value, str):
        if value.lower() == "true":
            return file_url + ".metadata", None
        return file_url + ".metadata", _hashes_from_fragment(value).get("sha256")
    if isinstance(value, dict):
        sha = value.get("sha256")
        return file_url + ".metadata", (
            sha.lower() if isinstance(sha, str) and _is_hex(sha) else None
        )
    return None, None


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: list[dict[str, str | None]] = []
        self.repository_version: str | None = None
        self.meta: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.anchors.append(values)
        elif tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"]
        elif tag == "meta" and values.get("name") == "pypi:repository-version":
            self.repository_version = values.get("content")
        elif tag == "meta" and values.get("name") in _STATUS_META:
            self.meta.setdefault(str(values.get("name")), values.get("content"))


_STATUS_META = ("pypi:project-status", "pypi:project-status-reason")

# An API version's major part: ASCII digits only (str.isdigit also takes "²", which int()
# refuses), and few enough that int() never meets Python's limit on an integer's digits.
_API_MAJOR = re.compile(r"[0-9]{1,10}")


def _check_api_version(url: str, version: object) -> None:
    if version is None:
        return
    shown = repr(version) if len(repr(version)) <= 40 else repr(version)[:37] + "..."
    if not isinstance(version, str) or not _API_MAJOR.fullmatch(version.split(".")[0]):
        raise IndexPageError(url, f"unreadable repository API version {shown}")
    if int(version.split(".")[0]) != 1:
        raise IndexPageError(url, f"unsupported repository API version {shown}")


# -- compact pages -----------------------------------------------------------------------------

COMPACT_FORMAT = 4
"""Version of :meth:`CompactPage.to_data`'s layout; data of another version is refused."""

PageKind = Literal["json", "html"]

# One release of a compact page: (the version as file names spell it, the page positions of
# its files, their PEP 691 file objects as one JSON array, in page order). An HTML anchor is
# turned into such an object. Each object is known to have a string "filename"; nothing else
# of it is checked until the release is read.
Release = tuple[str, tuple[int, ...], bytes]


class CompactPageError(FetchplanError):
    """Data given to :meth:`CompactPage.from_data` is not a compact page of this version."""


@dataclass(frozen=True, slots=True)
class CompactPage:
    """A project page read once, cheaply: its files grouped by the version their names show.

    ``releases`` holds each version's files (see :data:`Release`), in the order versions
    first appear on the page. ``unreadable`` lists the entries that cannot belong to any
    version (not an object, no file name), with why: reading every file of the page reports
    them; reading some versions does not. ``base`` is the URL the files' hrefs are relative
    to (the page URL, or an HTML page's ``<base>``). ``api_version`` is the repository API
    version the page states (None: none stated, 1.0); ``status`` the project's PEP 792 status
    when not ``active``, with the index's reason.
    """

    kind: PageKind
    url: str
    base: str
    project: str | None
    releases: tuple[Release, ...]
    unreadable: tuple[tuple[int, str], ...] = ()
    api_version: str | None = None
    status: ProjectStatus | None = None

    def to_data(self) -> tuple[Any, ...]:
        """Plain nested tuples of ``str``, ``int``, ``bytes`` and ``None``, for ``marshal``;
        :meth:`from_data` reads them back."""
        return (
            COMPACT_FORMAT,
            self.kind,
            self.url,
            self.base,
            self.project,
            self.releases,
            self.unreadable,
            self.api_version,
            self.status,
        )

    @classmethod
    def from_data(cls, data: Any) -> CompactPage:
        """The page :meth:`to_data` gave ``data`` for (lists accepted for tuples).

        Checks the page's shape and its releases', in time proportional to the number of
        versions; the files of a release are checked when it is read, as for a page just
        fetched. A cache should still detect damaged entries itself (a digest of the stored
        bytes): this catches data of another layout, not every flipped bit. Raises
        :class:`CompactPageError`.
        """
        try:
            fmt, kind, url, base, project, releases, unreadable, api_version, status = data
        except (TypeError, ValueError) as exc:
            raise CompactPageError(f"not a compact page: {exc}") from None
        if fmt != COMPACT_FORMAT:
            raise CompactPageError(f"compact page format {fmt!r}, expected {COMPACT_FORMAT}")
        if kind not in ("json", "html") or not isinstance(url, str) or not isinstance(base, str):
            raise CompactPageError("compact page: bad kind, url or base")
        if project is not None and not isinstance(project, str):
            raise CompactPageError("compact page: bad project")
        if api_version is not None and not isinstance(api_version, str):
            raise CompactPageError("compact page: bad API version")
        if status is not None:
            try:
                name, reason = status
            except (TypeError, ValueError):
                raise CompactPageError("compact page: bad project status") from None
            if name not in PROJECT_STATUSES or not isinstance(reason, str | None):
                raise CompactPageError("compact page: bad project status")
            status = (name, reason)
        try:
            groups = tuple(_release(release) for release in releases)
            problems = tuple((int(pos), str(why)) for pos, why in unreadable)
        except (TypeError, ValueError) as exc:
            raise CompactPageError(f"compact page: bad releases: {exc}") from None
        return cls(kind, url, base, project, groups, problems, api_version, status)

    @property
    def file_count(self) -> int:
        return sum(len(positions) for _version, positions, _files in self.releases)

    def links(self, versions: Iterable[str], index: str) -> list[Link]:
        """Every file of the releases spelled ``versions``, checked, in page order."""
        wanted = set(versions)
        files = [
            item
            for release in self.releases
            if release[0] in wanted
            for item in self._entries(release)
        ]
        files.sort(key=lambda item: item[0])
        return [link for item in files if (link := _entry_link(item, self, index)) is not None]

    def all_links(self, index: str) -> list[Link]:
        """Every file, checked, in page order; the first unreadable entry raises as it comes."""
        items: list[tuple[int, dict[str, Any] | str]] = list(self.unreadable)
        items.extend(item for release in self.releases for item in self._entries(release))
        items.sort(key=lambda item: item[0])
        links: list[Link] = []
        for position, entry in items:
            if isinstance(entry, str):
                raise IndexPageError(self.url, entry)
            link = _entry_link((position, entry), self, index)
            if link is not None:
                links.append(link)
        return links

    def _entries(self, release: Release) -> list[tuple[int, dict[str, Any]]]:
        _version, positions, blob = release
        entries = _decode_json(blob, self.url)
        # Only data given to from_data can fail this; a page just read cannot.
        if not (
            isinstance(entries, list)
            and len(entries) == len(positions)
            and all(type(e) is dict and type(e.get("filename")) is str for e in entries)
        ):
            raise CompactPageError(f"compact page of {redact(self.url)}: a damaged release")
        return list(zip(positions, entries, strict=True))


def _release(release: Any) -> Release:
    version, positions, blob = release
    if not isinstance(version, str) or not isinstance(blob, bytes):
        raise ValueError("a release is not (str, positions, bytes)")
    if type(positions) is not tuple:
        positions = tuple(positions)
    if not all(type(p) is int for p in positions):
        raise ValueError("a release's positions are not integers")
    return version, positions, blob


_ANY = msgspec.json.Decoder()
_MSGPACK = msgspec.msgpack.Encoder()
_UNPACK = msgspec.msgpack.Decoder()
_ENCODE = msgspec.json.Encoder()


class _PageHead(msgspec.Struct):
    meta: Any = None
    files: list[msgspec.Raw] | None = None
    project_status: Any = msgspec.field(default=None, name="project-status")


class _FileName(msgspec.Struct):
    filename: Any = None


_PAGE_HEAD = msgspec.json.Decoder(_PageHead)
_FILE_NAME = msgspec.json.Decoder(_FileName)


def _decode_json(data: bytes, where: str) -> Any:
    """``data`` decoded; JSON that msgspec refuses (a lone surrogate escape, NaN, an integer
    past 64 bits, nesting past its recursion) is read by the bounded reader, which reads what
    the standard library reads and refuses what is out of bounds (:mod:`fetchplan._parse`)."""
    try:
        return _ANY.decode(data)
    except (msgspec.DecodeError, RecursionError):
        try:
            return load_json(data, where)
        except FileFormatError as exc:
            raise IndexPageError(where, exc.problems[0].message) from None


_NO_RELEASE = ""
"""The release of files that name no version of the project: other projects' files, names
that split into no name and version. No version reads them; reading every file checks them."""


class _Grouper:
    """Files into releases by the version their names show.

    A name is split as ``parse_wheel_filename``/``parse_sdist_filename`` split it, without
    validating the parts: those functions validate it when its version is read.
    """

    def __init__(self, project: NormalizedName | None) -> None:
        self._project = project
        self._names: dict[str, bool] = {}
        self.groups: dict[str, tuple[list[int], list[Any]]] = {}

    def add(self, position: int, filename: str, entry: Any) -> None:
        """Add a file: ``entry`` is its object, or its JSON text (bytes or a buffer)."""
        version = _NO_RELEASE
        name = None
        if filename.endswith(".whl"):
            parts = filename[:-4].split("-")
            if len(parts) in (5, 6):
                name, version = parts[0], parts[1]
        else:
            if filename.endswith(".tar.gz"):
                stem = filename[:-7]
            elif filename.endswith(".zip"):
                stem = filename[:-4]
            elif filename.endswith(LEGACY_SDIST_SUFFIXES):
                # Kept under its version, to be listed as rejected by name (candidates.py).
                legacy = next(x for x in LEGACY_SDIST_SUFFIXES if filename.endswith(x))
                stem = filename[: -len(legacy)]
            else:
                stem = ""
            name, sep, version = stem.rpartition("-")
            if not sep:
                name = None
        if name is not None and self._project is not None:
            ours = self._names.get(name)
            if ours is None:
                ours = self._names[name] = canonicalize_name(name) == self._project
            if not ours:
                version = _NO_RELEASE
        group = self.groups.get(version)
        if group is None:
            self.groups[version] = ([position], [entry])
        else:
            group[0].append(position)
            group[1].append(entry)

    def releases(self, encode: Callable[[list[Any]], bytes] | None = None) -> tuple[Release, ...]:
        """The releases, each one's entries written by ``encode``; without it, the entries
        added are JSON text already, joined as they are."""
        return tuple(
            (
                version,
                tuple(positions),
                b"[" + b",".join(entries) + b"]" if encode is None else encode(entries),
            )
            for version, (positions, entries) in self.groups.items()
        )


def _stdlib_json(entries: list[Any]) -> bytes:
    # What the standard library read (NaN, lone surrogates, huge integers) it writes back.
    return json.dumps(entries).encode("utf-8")


def compact_json_page(
    data: bytes | str, page_url: str, project: NormalizedName | None = None
) -> CompactPage:
    """A PEP 691 JSON project page, read cheaply (see the module docstring).

    Raises :class:`IndexPageError` for what makes the whole page unusable: invalid JSON, no
    ``meta``/``files``, an unsupported API version.
    """
    body = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        head = _PAGE_HEAD.decode(body)
    except (msgspec.DecodeError, RecursionError):
        head = None
    if head is None or not isinstance(head.meta, dict) or head.files is None:
        # Not the shape of a page (or JSON msgspec refuses): read as the standard library
        # reads it, which names what is wrong, if anything.
        return _compact_json_slowly(body, page_url, project)
    api_version = head.meta.get("api-version")
    _check_api_version(page_url, api_version)
    grouper = _Grouper(project)
    unreadable: list[tuple[int, str]] = []
    for i, raw in enumerate(head.files):
        try:
            filename = _FILE_NAME.decode(raw).filename
        except msgspec.ValidationError:
            unreadable.append((i, f"files[{i}] is not an object"))
            continue
        except (msgspec.DecodeError, RecursionError) as exc:
            unreadable.append((i, f"files[{i}]: invalid JSON: {exc}"))
            continue
        if type(filename) is not str:
            unreadable.append((i, f"files[{i}]: 'filename' and 'url' must be strings"))
            continue
        grouper.add(i, filename, raw)
    return CompactPage(
        "json",
        page_url,
        page_url,
        project,
        grouper.releases(),
        tuple(unreadable),
        api_version,
        _json_status(head.project_status, page_url),
    )


def _json_status(value: Any, url: str) -> ProjectStatus | None:
    """PEP 792's ``project-status`` object of a JSON page (``status`` and ``reason``)."""
    if not isinstance(value, dict):
        return None
    return _project_status(value.get("status"), value.get("reason"), url)


def _compact_json_slowly(data: bytes, page_url: str, project: NormalizedName | None) -> CompactPage:
    try:
        document = load_json(data, page_url)
    except FileFormatError as exc:
        raise IndexPageError(page_url, exc.problems[0].message) from None
    if not isinstance(document, dict):
        raise IndexPageError(page_url, "top level is not an object")
    meta = document.get("meta")
    if not isinstance(meta, dict):
        raise IndexPageError(page_url, "missing 'meta'")
    api_version = meta.get("api-version")
    _check_api_version(page_url, api_version)
    files = document.get("files")
    if not isinstance(files, list):
        raise IndexPageError(page_url, "missing 'files' list")
    grouper = _Grouper(project)
    unreadable: list[tuple[int, str]] = []
    for i, entry in enumerate(files):
        if type(entry) is not dict:
            unreadable.append((i, f"files[{i}] is not an object"))
            continue
        filename = entry.get("filename")
        if type(filename) is not str:
            unreadable.append((i, f"files[{i}]: 'filename' and 'url' must be strings"))
            continue
        grouper.add(i, filename, entry)
    return CompactPage(
        "json",
        page_url,
        page_url,
        project,
        grouper.releases(_stdlib_json),
        tuple(unreadable),
        api_version,
        _json_status(document.get("project-status"), page_url),
    )


def compact_html_page(
    text: str, page_url: str, project: NormalizedName | None = None
) -> CompactPage:
    """A PEP 503 page (or a find-links HTML page), read cheaply (see the module docstring)."""
    parser = _AnchorParser()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError) as exc:  # html.parser's own failure modes
        raise IndexPageError(page_url, f"unparseable HTML: {exc}") from exc
    _check_api_version(page_url, parser.repository_version)
    base = urljoin(page_url, parser.base) if parser.base is not None else page_url
    grouper = _Grouper(project)
    for i, anchor in enumerate(parser.anchors):
        href = anchor["href"]
        assert href is not None
        # The anchor as a PEP 691 file object. PEP 714: the new attribute name first; the old
        # one from servers not yet updated. Its file name is a guess, for grouping (see
        # _entry_link).
        filename = _href_filename(href)
        entry: dict[str, Any] = {"filename": filename, "url": href, "hashes": {}}
        core = anchor.get("data-core-metadata", anchor.get("data-dist-info-metadata"))
        if core is not None:
            entry["core-metadata"] = core
        if "data-yanked" in anchor:
            entry["yanked"] = anchor.get("data-yanked") or ""
        if anchor.get("data-requires-python"):
            entry["requires-python"] = anchor["data-requires-python"]
        if anchor.get("data-provenance"):  # PEP 740's attribute, the JSON page's key
            entry["provenance"] = anchor["data-provenance"]
        grouper.add(i, filename, entry)
    return CompactPage(
        "html",
        page_url,
        base,
        project,
        grouper.releases(_ENCODE.encode),
        api_version=parser.repository_version,
        status=_project_status(
            parser.meta.get("pypi:project-status"),
            parser.meta.get("pypi:project-status-reason"),
            page_url,
        ),
    )


def _href_filename(href: str) -> str:
    # What the joined URL's last path segment will be, without joining: the file is grouped by
    # it now, and named by the joined URL when its version is read (the two agree or the file
    # is dropped then).
    path = href.strip().translate(_URL_REMOVED).split("#", 1)[0].split("?", 1)[0]
    return unquote(path.rsplit("/", 1)[-1])


_URL_REMOVED = str.maketrans("", "", "\t\r\n")  # what urllib.parse drops from any URL


def compact_page(
    body: bytes,
    content_type: str,
    page_url: str,
    project: NormalizedName | None = None,
    *,
    encoding: str | None = None,
) -> CompactPage:
    """The compact form of a project page's ``body`` served as ``content_type`` (an HTML body
    decoded as ``encoding``, by default UTF-8; undecodable bytes replaced)."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind in (JSON_TYPE, "application/json"):
        return compact_json_page(body, page_url, project)
    if kind in (HTML_TYPE, "text/html", ""):
        try:
            text = body.decode(encoding or "utf-8", "replace")
        except LookupError:  # a charset Python does not know
            text = body.decode("utf-8", "replace")
        return compact_html_page(text, page_url, project)
    raise IndexPageError(page_url, f"unexpected Content-Type {kind!r}")


def _entry_link(item: tuple[int, dict[str, Any]], page: CompactPage, index: str) -> Link | None:
    i, entry = item
    page_url, project = page.url, page.project
    where = f"files[{i}]"
    href, hashes, size = entry.get("url"), entry.get("hashes"), entry.get("size")
    if not isinstance(href, str):
        raise IndexPageError(page_url, f"{where}: 'filename' and 'url' must be strings")
    if not isinstance(hashes, dict):
        raise IndexPageError(page_url, f"{where}.hashes must be an object")
    url, fragment = _absolute(page.base, href)
    if page.kind == "html":
        # An anchor's file is what its joined URL names.
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    else:
        filename = entry["filename"]
    kept = _strong_hashes(hashes) or _hashes_from_fragment(fragment)
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise IndexPageError(page_url, f"{where}.size must be a non-negative integer")
    yanked_value = entry.get("yanked", False)
    core = entry.get("core-metadata", entry.get("dist-info-metadata"))
    metadata_url, metadata_sha = _metadata_ref(core, url)
    requires_python = _text(entry.get("requires-python"))
    return link_from_filename(
        filename,
        url,
        index,
        project=cast(NormalizedName, project) if project is not None else None,
        hashes=kept,
        requires_python=requires_python if requires_python and requires_python.strip() else None,
        yanked=yanked_value is True or isinstance(yanked_value, str),
        yanked_reason=_text(yanked_value) or None,
        size=size,
        metadata_url=metadata_url,
        metadata_sha256=metadata_sha,
        upload_time=_text(entry.get("upload-time")),
        provenance=_provenance_url(entry.get("provenance"), page),
        project_status=page.status,
    )


def _strong_hashes(hashes: Mapping[Any, Any]) -> dict[str, str]:
    """The sha256/384/512 values of an entry's ``hashes``, lower-cased; others dropped."""
    return {
        algo.lower(): value.lower()
        for algo, value in hashes.items()
        if isinstance(algo, str)
        and algo.lower() in _STRONG_HASHES
        and isinstance(value, str)
        and _is_hex(value)
    }


def _text(value: Any) -> str | None:
    """``value`` when a page gives a string there, else None (a field of the wrong type)."""
    return value if isinstance(value, str) else None


def _provenance_url(value: Any, page: CompactPage) -> str | None:
    """The PEP 740 provenance URL of a file object (a JSON page's ``provenance``, an HTML
    anchor's ``data-provenance``), absolute and without credentials; only a page of API
    version 1.3 or later names one (the version that brought them)."""
    if not isinstance(value, str) or not value.strip():
        return None
    if not _api_at_least(page.api_version, (1, 3)):
        return None
    url, _fragment = _absolute(page.base, value)
    return url if urlsplit(url).scheme in ("http", "https", "file") else None


def _api_at_least(version: str | None, wanted: tuple[int, int]) -> bool:
    """Whether API ``version`` (already checked: major 1) is ``wanted`` or later."""
    if version is None:
        return False
    major, _, minor = version.partition(".")
    minor_digits = minor.split(".", 1)[0]
    if not minor_digits.isascii() or not minor_digits.isdigit() or len(minor_digits) > 10:
        return False
    return (int(major), int(minor_digits)) >= wanted


def parse_html_page(
    text: str, page_url: str, index: str, project: NormalizedName | None = None
) -> list[Link]:
    """Links of a PEP 503 page (also any find-links HTML page), in page order."""
    return compact_html_page(text, page_url, project).all_links(index)


def parse_json_page(
    data: bytes | str, page_url: str, index: str, project: NormalizedName | None = None
) -> list[Link]:
    """Links of a PEP 691 JSON project page, in page order."""
    return compact_json_page(data, page_url, project).all_links(index)


class CompactPageCodec:
    """A project page's compact form kept as bytes (MessagePack of plain data), for a page
    cache.

    :meth:`parse` reads a fetched body (:func:`compact_page`); :meth:`to_data` and
    :meth:`from_data` keep and restore the result. ``name`` versions the layout and
    ``context`` is what a parse depends on besides the body: key kept pages by both and by
    the body's digest. :meth:`from_data` raises :class:`CompactPageError` for data of another
    layout or of another page; treat that as a miss.
    """

    name = f"compact-page/{COMPACT_FORMAT}"

    def __init__(
        self,
        content_type: str,
        page_url: str,
        project: NormalizedName,
        *,
        encoding: str | None = None,
    ) -> None:
        self._content_type = content_type
        self._page_url = page_url
        self._project = project
        self._encoding = encoding
        self.context = json.dumps([content_type, page_url, project, encoding])

    def parse(self, body: bytes) -> CompactPage:
        return compact_page(
            body, self._content_type, self._page_url, self._project, encoding=self._encoding
        )

    def to_data(self, value: CompactPage) -> bytes:
        return _MSGPACK.encode(value.to_data())

    def from_data(self, data: bytes) -> CompactPage:
        try:
            decoded = _UNPACK.decode(data)
        except msgspec.DecodeError as exc:
            raise CompactPageError(f"kept page is unreadable: {exc}") from None
        page = CompactPage.from_data(decoded)
        if page.url != self._page_url or page.project != self._project:
            raise CompactPageError(f"kept page is not the page of {redact(self._page_url)}")
        return page


class ProjectPage:
    """A project's files from one source, by version; ``url`` is the page actually read.

    Made from a :class:`CompactPage` (an index page: a version's files become links when
    :meth:`links_for` first asks for it) or from links already made (:meth:`from_links`: a
    find-links location). Thread-safe: a version's links are made once, under a lock.
    """

    __slots__ = (
        "_by_version",
        "_compact",
        "_given",
        "_links",
        "_lock",
        "source",
        "url",
        "versions",
    )

    def __init__(
        self,
        source: IndexSource | None,
        url: str,
        compact: CompactPage | None = None,
        *,
        links: Iterable[Link] = (),
    ) -> None:
        """From ``compact``, or (without it) from ``links`` already made."""
        self.source = source
        self.url = url
        self._compact = compact
        self._lock = threading.Lock()
        self._links: dict[Version, tuple[Link, ...]] = {}
        self._by_version: dict[Version, list[str]] = {}
        self._given: tuple[Link, ...] = ()
        if compact is None:
            self._given = tuple(links)
            grouped: dict[Version, list[Link]] = {}
            for link in self._given:
                grouped.setdefault(link.version, []).append(link)
            self._links = {version: tuple(group) for version, group in grouped.items()}
        else:
            for text, _positions, _files in compact.releases:
                if text == _NO_RELEASE:
                    continue
                try:
                    version = Version(text)
                except InvalidVersion:
                    log.debug("skipping the files of version %r on %s", text, redact(url))
                    continue
                self._by_version.setdefault(version, []).append(text)
        known = self._links if compact is None else self._by_version
        self.versions: tuple[Version, ...] = tuple(sorted(known, reverse=True))
        """Every version some file names, newest first (a version's files may all turn out
        unusable, e.g. unsafe names: :meth:`links_for` is then empty)."""

    @classmethod
    def from_links(cls, source: IndexSource | None, url: str, links: Iterable[Link]) -> ProjectPage:
        """A page of links already made (a find-links location's, for one project)."""
        return cls(source, url, links=links)

    @property
    def compact(self) -> CompactPage | None:
        """The compact page this was made from (None when made from links)."""
        return self._compact

    @property
    def status(self) -> ProjectStatus | None:
        """The project's PEP 792 status on this page when not ``active`` (find-links: None)."""
        return None if self._compact is None else self._compact.status

    def links_for(self, version: Version) -> tuple[Link, ...]:
        """The files of ``version``, checked, in page order (made on first call).

        Raises :class:`IndexPageError` for a malformed entry of this version.
        """
        with self._lock:
            known = self._links.get(version)
            if known is not None or self._compact is None:
                return known or ()
            made = tuple(
                link
                for link in self._compact.links(self._by_version.get(version, ()), self._index())
                # An HTML file is named by its joined URL: one that does not name the version
                # it was grouped under belongs to none.
                if link.version == version
            )
            self._links[version] = made
            return made

    @property
    def links(self) -> tuple[Link, ...]:
        """Every file, checked, in page order; raises for any malformed entry."""
        if self._compact is None:
            return self._given
        return tuple(self._compact.all_links(self._index()))

    def _index(self) -> str:
        return self.source.url if self.source is not None else self.url


def links_from_directory(directory: Path, index: str) -> list[Link]:
    """Every wheel and sdist directly inside ``directory`` (a find-links directory)."""
    links: list[Link] = []
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            continue
        url = "file://" + pathname2url(str(path.resolve()))
        link = link_from_filename(path.name, url, index, size=path.stat().st_size)
        if link is not None:
            links.append(link)
    return links


def file_url_path(url: str) -> Path:
    """The local path a ``file://`` URL names."""
    return Path(url2pathname(urlsplit(url).path))


def _check_page_status(url: str, response: Fetched) -> None:
    """Raise :class:`IndexUnavailable` for an answer that is neither a page nor a 404/410."""
    if response.status_code == 200:
        return
    hint = ""
    if response.status_code in (401, 403):
        hint = " (check the credentials in the index URL or ~/.netrc)"
    raise IndexUnavailable(
        f"index {redact(url)} answered HTTP {response.status_code} {response.reason}{hint}"
    )


class IndexClient:
    """Reads project pages and find-links locations over one shared session.

    Thread-safe: the session is shared as :mod:`fetchplan.planner.http` explains, and the only
    mutable state here (find-links listings, read once per location) is guarded by a lock.
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        timeout: float = 30.0,
        timings: Timings | None = None,
        pages: PageCache | None = None,
        refresh: Callable[[NormalizedName], bool] = lambda _name: False,
    ) -> None:
        """``pages``: where pages are kept between runs (HTTP caching rules, see
        :mod:`fetchplan.planner.httpcache`); ``refresh(name)`` true ignores what it holds for
        project ``name`` (the page is fetched and parsed again, and kept anew)."""
        self._session = session
        self._timeout = timeout
        self._timings = timings
        self._page_cache = pages
        self._refresh = refresh
        self._lock = threading.Lock()
        self._flat: dict[str, tuple[Link, ...] | BaseException] = {}
        self._flat_locks: dict[str, threading.Lock] = {}

    def project_page(self, source: IndexSource, name: NormalizedName) -> ProjectPage | None:
        """The project's page on the index ``source``, or None when the index lacks it.

        With a page cache: a fresh stored page is used without a request; a stale one is
        revalidated (a 304 reuses it); a page fetched whole is parsed only when no page with
        the same body was parsed before.
        """
        url = source.page_url(name)
        if url.startswith("file:"):
            return self._file_project_page(source, name, url)
        cache = self._page_cache
        key = self._cache_key(url) if cache is not None else None
        refresh = self._refresh(name)
        stored = (
            cache.lookup(key) if cache is not None and key is not None and not refresh else None
        )
        headers = {"Accept": ACCEPT}
        if cache is not None and stored is not None:
            fresh = self._fresh_page(cache, stored, source, name)
            if fresh is not None:
                return fresh
            headers.update(httpcache.conditional_headers(stored.headers))
        response = self._get_page(url, headers)
        if response.status_code == 304 and cache is not None and stored is not None:
            assert key is not None
            page = self._revalidated(
                cache, key=key, stored=stored, response=response, source=source, name=name
            )
            if page is not None:
                return page
            response = self._get_page(url, {"Accept": ACCEPT})
        if response.status_code in _NOT_FOUND:
            if cache is not None and key is not None:
                cache.forget(key)
            return None
        _check_page_status(url, response)
        return self._fetched_page(source, name, url, response, key=key, refresh=refresh)

    def _fresh_page(
        self, cache: PageCache, stored: StoredPage, source: IndexSource, name: NormalizedName
    ) -> ProjectPage | None:
        """The stored page when it is still fresh (and its parsed form is kept), else None."""
        if not httpcache.is_fresh(stored.headers, stored.stored_at, time.time()):
            return None
        compact = self._stored_page(cache, stored, name)
        if compact is None:
            return None
        cache.count("fresh")
        return ProjectPage(source, stored.url, compact)

    def _fetched_page(
        self,
        source: IndexSource,
        name: NormalizedName,
        url: str,
        response: Fetched,
        *,
        key: str | None,
        refresh: bool,
    ) -> ProjectPage:
        """The page of a 200 answer, parsed (or its parsed form reused) and kept as the
        answer's caching headers allow."""
        cache = self._page_cache
        final_url = split_credentials(response.url)[0] if response.url else url
        codec = CompactPageCodec(
            response.headers.get("Content-Type", ""),
            final_url,
            name,
            encoding=get_encoding_from_headers(response.headers),
        )
        kept = httpcache.kept_headers(response.headers)
        if cache is None or httpcache.forbids_storing(kept):
            # no-store: nothing of the page may be kept, its parsed form included.
            if cache is not None and key is not None:
                cache.forget(key)
            if cache is not None:
                cache.count("parsed")
            return ProjectPage(source, final_url, codec.parse(response.content))
        digest = hashlib.sha256(response.content).hexdigest()
        compact = None if refresh else cache.parsed(codec, digest)
        if compact is None:
            compact = codec.parse(response.content)
            cache.count("parsed")
            cache.keep_parsed(codec, digest, compact)
        else:
            cache.count("reused")
        if key is not None:
            if httpcache.storable(200, kept):
                cache.store(key, StoredPage(final_url, time.time(), kept, digest))
            else:
                cache.forget(key)
        return ProjectPage(source, final_url, compact)

    def _get_page(self, url: str, headers: Mapping[str, str]) -> Fetched:
        try:
            return get_whole(
                self._session, url, headers=headers, timeout=self._timeout, limit=MAX_PAGE_BYTES
            )
        except BodyTooLarge:
            raise IndexPageError(url, f"larger than {MAX_PAGE_BYTES} bytes (decoded)") from None
        except requests.RequestException as exc:
            raise IndexUnavailable(f"index {redact(url)} failed: {failure_reason(exc)}") from exc

    def _cache_key(self, url: str) -> str | None:
        """The page cache's key for ``url`` with the credentials the session will send; None
        when those cannot be known here (an auth other than the credential store's)."""
        auth = getattr(self._session, "auth", None)
        if auth is None:
            return page_key(url, ACCEPT, None)
        if isinstance(auth, StoreAuth):
            return page_key(url, ACCEPT, auth.header_for(url))
        return None

    def _stored_page(
        self, cache: PageCache, stored: StoredPage, name: NormalizedName
    ) -> CompactPage | None:
        content_type = stored.headers.get("content-type", "")
        codec = CompactPageCodec(
            content_type, stored.url, name, encoding=get_encoding_from_headers(stored.headers)
        )
        return cache.parsed(codec, stored.body_sha256)

    def _revalidated(
        self,
        cache: PageCache,
        *,
        key: str,
        stored: StoredPage,
        response: Fetched,
        source: IndexSource,
        name: NormalizedName,
    ) -> ProjectPage | None:
        """The stored page a 304 answer confirms, or None when it does not (fetch it whole)."""
        headers = httpcache.revalidated(stored.headers, response.headers)
        compact = None if headers is None else self._stored_page(cache, stored, name)
        if headers is None or compact is None:
            return None
        cache.count("revalidated")
        if headers != stored.headers or httpcache.freshness_lifetime(headers) > 0:
            cache.store(key, replace(stored, headers=headers, stored_at=time.time()))
        return ProjectPage(source, stored.url, compact)

    def _file_project_page(
        self, source: IndexSource, name: NormalizedName, url: str
    ) -> ProjectPage | None:
        directory = file_url_path(url)
        started = time.monotonic()
        for page, content_type in (("index.json", JSON_TYPE), ("index.html", HTML_TYPE)):
            path = directory / page
            if not path.is_file():
                continue
            try:
                data = _read_local_page(path, url + page)
            except OSError as exc:
                raise IndexUnavailable(f"index {url}: cannot read {page}: {exc}") from exc
            if self._timings is not None:
                self._timings.record_request("READ", url + page, 200, started, len(data))
            page_url = url + page
            return ProjectPage(source, page_url, compact_page(data, content_type, page_url, name))
        if directory.is_dir():
            raise IndexPageError(url, "directory has neither index.json nor index.html")
        return None

    def find_links(self, source: IndexSource, name: NormalizedName) -> ProjectPage:
        """The links for ``name`` at a find-links location (read once, then filtered)."""
        links = self._flat_links(source)
        return ProjectPage.from_links(
            source, source.url, (link for link in links if link.name == name)
        )

    def _flat_links(self, source: IndexSource) -> tuple[Link, ...]:
        with self._lock:
            lock = self._flat_locks.setdefault(source.url, threading.Lock())
        with lock:
            cached = self._flat.get(source.url)
            if cached is None:
                try:
                    cached = self._read_flat(source)
                except FetchplanError as exc:
                    cached = exc
                self._flat[source.url] = cached
        if isinstance(cached, BaseException):
            raise cached
        return cached

    def _read_flat(self, source: IndexSource) -> tuple[Link, ...]:
        url = source.url
        started = time.monotonic()
        if url.startswith("file:"):
            path = file_url_path(url)
            if path.is_dir():
                links = links_from_directory(path, url)
                if self._timings is not None:
                    self._timings.record_request("LIST", url, 200, started, 0)
                return tuple(links)
            if path.is_file():
                try:
                    text = _read_local_page(path, url).decode("utf-8", "replace")
                except OSError as exc:
                    raise IndexUnavailable(f"find-links location {url}: {exc}") from exc
                if self._timings is not None:
                    self._timings.record_request("READ", url, 200, started, len(text))
                return tuple(parse_html_page(text, url, url))
            raise IndexUnavailable(f"find-links location {url} does not exist")
        try:
            response = get_whole(
                self._session,
                url,
                headers={"Accept": "text/html"},
                timeout=self._timeout,
                limit=MAX_PAGE_BYTES,
            )
        except BodyTooLarge:
            raise IndexUnavailable(
                f"find-links {redact(url)}: page is larger than {MAX_PAGE_BYTES} bytes (decoded)"
            ) from None
        except requests.RequestException as exc:
            reason = failure_reason(exc)
            raise IndexUnavailable(f"find-links {redact(url)} failed: {reason}") from exc
        if response.status_code != 200:
            raise IndexUnavailable(
                f"find-links {redact(url)} answered HTTP {response.status_code} {response.reason}"
            )
        final_url = split_credentials(response.url)[0] if response.url else url
        return tuple(parse_html_page(response.text, final_url, url))
