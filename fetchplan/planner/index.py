"""Package index pages: pure parsers (PEP 503 HTML, PEP 691 JSON) and a thin client.

The parsers turn a page into :class:`Link` values: absolute, credential-free URLs with the
file's hashes (``#sha256=`` fragments or JSON ``hashes``), ``requires-python``, yanked status
(PEP 592), size (PEP 700) and where its core metadata lives (PEP 658/714). They never touch the
network, so they test on strings.

:class:`IndexClient` fetches project pages from ``http(s)://`` and ``file://`` indexes (asking
for JSON first by content negotiation) and reads find-links locations (a directory or an HTML
page). It is safe to call from several threads at once: see :mod:`fetchplan.planner.http` for
the session, and find-links pages are read once under a lock.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urldefrag, urljoin, urlsplit
from urllib.request import pathname2url, url2pathname

import requests
from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from fetchplan._urls import redact, split_credentials
from fetchplan.errors import FetchplanError, NetworkError
from fetchplan.planner.http import get_whole
from fetchplan.planner.sources import ACCEPT, HTML_TYPE, JSON_TYPE, IndexSource, source_for
from fetchplan.planner.timings import Timings

__all__ = [
    "ACCEPT",
    "IndexClient",
    "IndexPageError",
    "IndexSource",
    "IndexUnavailable",
    "Link",
    "ProjectPage",
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

DistKind = Literal["wheel", "sdist"]


class IndexPageError(FetchplanError):
    """An index page could not be understood; names its URL."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"malformed index page {redact(url)}: {reason}")


class IndexUnavailable(NetworkError):
    """An index did not answer usefully, after the retries the session allows."""


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

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("sha256")

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file:")


@dataclass(frozen=True, slots=True)
class ProjectPage:
    """A project's links from one source; ``url`` is the page actually read."""

    source: IndexSource
    url: str
    links: tuple[Link, ...]


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
        elif clean.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(clean)
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


def _is_hex(value: str) -> bool:
    return bool(value) and all(c in "0123456789abcdefABCDEF" for c in value)


def _absolute(base: str, href: str) -> tuple[str, str]:
    """Join ``href`` to ``base``; return (url without credentials or fragment, fragment)."""
    joined = urljoin(base, href.strip())
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

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.anchors.append(values)
        elif tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"]
        elif tag == "meta" and values.get("name") == "pypi:repository-version":
            self.repository_version = values.get("content")


def _check_api_version(url: str, version: object) -> None:
    if version is None:
        return
    if not isinstance(version, str) or not version.split(".")[0].isdigit():
        raise IndexPageError(url, f"unreadable repository API version {version!r}")
    if int(version.split(".")[0]) != 1:
        raise IndexPageError(url, f"unsupported repository API version {version}")


def parse_html_page(
    text: str, page_url: str, index: str, project: NormalizedName | None = None
) -> list[Link]:
    """Links of a PEP 503 page (also any find-links HTML page), in page order."""
    parser = _AnchorParser()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError) as exc:  # html.parser's own failure modes
        raise IndexPageError(page_url, f"unparseable HTML: {exc}") from exc
    _check_api_version(page_url, parser.repository_version)
    base = urljoin(page_url, parser.base) if parser.base is not None else page_url
    links: list[Link] = []
    for anchor in parser.anchors:
        href = anchor["href"]
        assert href is not None
        url, fragment = _absolute(base, href)
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        # PEP 714: the new attribute name first; the old one from servers not yet updated.
        core = anchor.get("data-core-metadata", anchor.get("data-dist-info-metadata"))
        if "data-core-metadata" not in anchor and "data-dist-info-metadata" not in anchor:
            core = None
        metadata_url, metadata_sha = _metadata_ref(core, url) if core is not None else (None, None)
        yanked_attr = "data-yanked" in anchor
        reason = anchor.get("data-yanked") or None
        link = link_from_filename(
            filename,
            url,
            index,
            project=project,
            hashes=_hashes_from_fragment(fragment),
            requires_python=anchor.get("data-requires-python") or None,
            yanked=yanked_attr,
            yanked_reason=reason if yanked_attr else None,
            metadata_url=metadata_url,
            metadata_sha256=metadata_sha,
        )
        if link is not None:
            links.append(link)
    return links


def parse_json_page(
    data: bytes | str, page_url: str, index: str, project: NormalizedName | None = None
) -> list[Link]:
    """Links of a PEP 691 JSON project page, in page order."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexPageError(page_url, f"invalid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise IndexPageError(page_url, "top level is not an object")
    meta = document.get("meta")
    if not isinstance(meta, dict):
        raise IndexPageError(page_url, "missing 'meta'")
    _check_api_version(page_url, meta.get("api-version", "1.0"))
    files = document.get("files")
    if not isinstance(files, list):
        raise IndexPageError(page_url, "missing 'files' list")
    links: list[Link] = []
    for i, entry in enumerate(files):
        where = f"files[{i}]"
        if not isinstance(entry, dict):
            raise IndexPageError(page_url, f"{where} is not an object")
        filename, href, hashes = entry.get("filename"), entry.get("url"), entry.get("hashes")
        if not isinstance(filename, str) or not isinstance(href, str):
            raise IndexPageError(page_url, f"{where}: 'filename' and 'url' must be strings")
        if not isinstance(hashes, dict):
            raise IndexPageError(page_url, f"{where}.hashes must be an object")
        url, fragment = _absolute(page_url, href)
        kept = {
            algo.lower(): value.lower()
            for algo, value in hashes.items()
            if isinstance(algo, str)
            and algo.lower() in _STRONG_HASHES
            and isinstance(value, str)
            and _is_hex(value)
        }
        if not kept:
            kept = _hashes_from_fragment(fragment)
        size = entry.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise IndexPageError(page_url, f"{where}.size must be a non-negative integer")
        yanked_value = entry.get("yanked", False)
        yanked = yanked_value is True or isinstance(yanked_value, str)
        reason = yanked_value if isinstance(yanked_value, str) and yanked_value else None
        core = entry.get("core-metadata", entry.get("dist-info-metadata"))
        metadata_url, metadata_sha = _metadata_ref(core, url)
        requires_python = entry.get("requires-python")
        upload_time = entry.get("upload-time")
        provenance = entry.get("provenance")
        link = link_from_filename(
            filename,
            url,
            index,
            project=project,
            hashes=kept,
            requires_python=requires_python
            if isinstance(requires_python, str) and requires_python.strip()
            else None,
            yanked=yanked,
            yanked_reason=reason,
            size=size,
            metadata_url=metadata_url,
            metadata_sha256=metadata_sha,
            upload_time=upload_time if isinstance(upload_time, str) else None,
            provenance=provenance if isinstance(provenance, str) else None,
        )
        if link is not None:
            links.append(link)
    return links


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
    ) -> None:
        self._session = session
        self._timeout = timeout
        self._timings = timings
        self._lock = threading.Lock()
        self._flat: dict[str, tuple[Link, ...] | BaseException] = {}
        self._flat_locks: dict[str, threading.Lock] = {}

    def project_page(self, source: IndexSource, name: NormalizedName) -> ProjectPage | None:
        """The project's page on the index ``source``, or None when the index lacks it."""
        url = source.page_url(name)
        if url.startswith("file:"):
            return self._file_project_page(source, name, url)
        try:
            response = get_whole(
                self._session, url, headers={"Accept": ACCEPT}, timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise IndexUnavailable(f"index {redact(url)} failed: {_reason(exc)}") from exc
        if response.status_code in _NOT_FOUND:
            return None
        if response.status_code != 200:
            hint = ""
            if response.status_code in (401, 403):
                hint = " (check the credentials in the index URL or ~/.netrc)"
            raise IndexUnavailable(
                f"index {redact(url)} answered HTTP {response.status_code} {response.reason}{hint}"
            )
        final_url = split_credentials(response.url)[0] if response.url else url
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type in (JSON_TYPE, "application/json"):
            links = parse_json_page(response.content, final_url, source.url, name)
        elif content_type in (HTML_TYPE, "text/html") or content_type == "":
            links = parse_html_page(response.text, final_url, source.url, name)
        else:
            raise IndexPageError(final_url, f"unexpected Content-Type {content_type!r}")
        return ProjectPage(source=source, url=final_url, links=tuple(links))

    def _file_project_page(
        self, source: IndexSource, name: NormalizedName, url: str
    ) -> ProjectPage | None:
        directory = file_url_path(url)
        started = time.monotonic()
        for page, parse in (("index.json", parse_json_page), ("index.html", parse_html_page)):
            path = directory / page
            if not path.is_file():
                continue
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise IndexUnavailable(f"index {url}: cannot read {page}: {exc}") from exc
            if self._timings is not None:
                self._timings.record_request("READ", url + page, 200, started, len(data))
            page_url = url + page
            if parse is parse_json_page:
                links = parse_json_page(data, page_url, source.url, name)
            else:
                links = parse_html_page(data.decode("utf-8", "replace"), page_url, source.url, name)
            return ProjectPage(source=source, url=page_url, links=tuple(links))
        if directory.is_dir():
            raise IndexPageError(url, "directory has neither index.json nor index.html")
        return None

    def find_links(self, source: IndexSource, name: NormalizedName) -> ProjectPage:
        """The links for ``name`` at a find-links location (read once, then filtered)."""
        links = self._flat_links(source)
        return ProjectPage(
            source=source, url=source.url, links=tuple(link for link in links if link.name == name)
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
                text = path.read_text("utf-8", "replace")
                if self._timings is not None:
                    self._timings.record_request("READ", url, 200, started, len(text))
                return tuple(parse_html_page(text, url, url))
            raise IndexUnavailable(f"find-links location {url} does not exist")
        try:
            response = get_whole(
                self._session, url, headers={"Accept": "text/html"}, timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise IndexUnavailable(f"find-links {redact(url)} failed: {_reason(exc)}") from exc
        if response.status_code != 200:
            raise IndexUnavailable(
                f"find-links {redact(url)} answered HTTP {response.status_code} {response.reason}"
            )
        final_url = split_credentials(response.url)[0] if response.url else url
        return tuple(parse_html_page(response.text, final_url, url))


def _reason(exc: BaseException) -> str:
    """A short, credential-free reason for a failed request (the innermost cause)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            current = reason
            continue
        args = getattr(current, "args", ())
        nested = next((a for a in args if isinstance(a, BaseException)), None)
        if nested is None:
            break
        current = nested
    text = str(current) if current is not None else str(exc)
    text = redact(" ".join(text.split()))
    return text if len(text) <= 200 else text[:197] + "..."
