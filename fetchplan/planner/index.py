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

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urldefrag, urljoin, urlsplit
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

from fetchplan._limits import MAX_PAGE_BYTES
from fetchplan._parse import load_json, long_number
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
    "IndexClient",
    "IndexPageError",
    "IndexSource",
    "IndexUnavailable",
    "Link",
    "LinksCodec",
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


# What RFC 3986 allows in a URL as it is (letters and digits besides); anything else in a link
# is percent-encoded, as pip does, so the plan holds the URL a request would send.
_URL_SAFE = "-._~:/?#[]@!$&'()*+,;=%"


def _absolute(base: str, href: str) -> tuple[str, str]:
    """Join ``href`` to ``base``; return (url without credentials or fragment, fragment)."""
    joined = quote(urljoin(base, href.strip()), safe=_URL_SAFE)
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
        document = load_json(data, page_url)
    except FileFormatError as exc:
        raise IndexPageError(page_url, exc.problems[0].message) from None
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


def _decoded_text(content: bytes, content_type: str) -> str:
    """``content`` decoded as :attr:`Fetched.text` decodes a body with that Content-Type."""
    return Fetched(
        url="", status_code=200, reason="", headers={"Content-Type": content_type}, content=content
    ).text


class LinksCodec:
    """A project page as :class:`Link` values, kept as compact JSON (a
    :class:`~fetchplan.cache.Codec`): reading it back parses no file name and joins no URL."""

    name = "links/1"

    def __init__(
        self, content_type: str, page_url: str, index: str, project: NormalizedName
    ) -> None:
        """Raises :class:`IndexPageError` for a Content-Type that is no index page."""
        kind = content_type.split(";", maxsplit=1)[0].strip().lower()
        if kind in (JSON_TYPE, "application/json"):
            self._json = True
        elif kind in (HTML_TYPE, "text/html", ""):
            self._json = False
        else:
            raise IndexPageError(page_url, f"unexpected Content-Type {kind!r}")
        self._content_type = content_type
        self._page_url = page_url
        self._index = index
        self._project = project
        self.context = json.dumps([content_type, page_url, index, project])

    def parse(self, body: bytes) -> tuple[Link, ...]:
        if self._json:
            return tuple(parse_json_page(body, self._page_url, self._index, self._project))
        text = _decoded_text(body, self._content_type)
        return tuple(parse_html_page(text, self._page_url, self._index, self._project))

    def to_data(self, value: tuple[Link, ...]) -> bytes:
        # As in from_data, each version and tag set is rendered once per page.
        versions: dict[Version, str] = {}
        tag_sets: dict[frozenset[Tag], list[str]] = {}
        rows = []
        for link in value:
            version = versions.get(link.version)
            if version is None:
                version = versions[link.version] = str(link.version)
            tags = tag_sets.get(link.tags)
            if tags is None:
                tags = tag_sets[link.tags] = sorted(str(tag) for tag in link.tags)
            rows.append(
                (
                    link.filename,
                    link.url,
                    link.name,
                    version,
                    link.kind,
                    tags,
                    link.build,
                    link.hashes,
                    link.requires_python,
                    link.yanked,
                    link.yanked_reason,
                    link.size,
                    link.metadata_url,
                    link.metadata_sha256,
                    link.upload_time,
                    link.provenance,
                )
            )
        return json.dumps(rows, separators=(",", ":")).encode("utf-8")

    def from_data(self, data: bytes) -> tuple[Link, ...]:
        links: list[Link] = []
        # A page repeats its versions and tag sets across files: each is built once.
        versions: dict[str, Version] = {}
        tag_sets: dict[tuple[str, ...], frozenset[Tag]] = {}
        for row in json.loads(data):
            (
                filename, url, name, version, kind, tag_names, build, hashes, requires_python,
                yanked, yanked_reason, size, metadata_url, metadata_sha256, upload_time,
                provenance,
            ) = row  # fmt: skip
            if kind not in ("wheel", "sdist") or name != self._project:
                raise ValueError(f"not a link of {self._project}: {filename!r}")
            parsed_version = versions.get(version)
            if parsed_version is None:
                parsed_version = versions[version] = Version(version)
            tag_key = tuple(tag_names)
            tags = tag_sets.get(tag_key)
            if tags is None:
                tags = tag_sets[tag_key] = frozenset(Tag(*t.split("-")) for t in tag_key)
            links.append(
                Link(
                    filename=filename,
                    url=url,
                    index=self._index,
                    name=name,
                    version=parsed_version,
                    kind=kind,
                    tags=tags,
                    build=(int(build[0]), str(build[1])) if build else (),
                    hashes=hashes,
                    requires_python=requires_python,
                    yanked=yanked,
                    yanked_reason=yanked_reason,
                    size=size,
                    metadata_url=metadata_url,
                    metadata_sha256=metadata_sha256,
                    upload_time=upload_time,
                    provenance=provenance,
                )
            )
        return tuple(links)


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
            if httpcache.is_fresh(stored.headers, stored.stored_at, time.time()):
                links = self._stored_links(cache, stored, source, name)
                if links is not None:
                    cache.count("fresh")
                    return ProjectPage(source=source, url=stored.url, links=links)
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
        if response.status_code != 200:
            hint = ""
            if response.status_code in (401, 403):
                hint = " (check the credentials in the index URL or ~/.netrc)"
            raise IndexUnavailable(
                f"index {redact(url)} answered HTTP {response.status_code} {response.reason}{hint}"
            )
        final_url = split_credentials(response.url)[0] if response.url else url
        content_type = response.headers.get("Content-Type", "")
        codec = LinksCodec(content_type, final_url, source.url, name)
        kept = httpcache.kept_headers(response.headers)
        if cache is None or httpcache.forbids_storing(kept):
            # no-store: nothing of the page may be kept, its parsed form included.
            if cache is not None and key is not None:
                cache.forget(key)
            if cache is not None:
                cache.count("parsed")
            return ProjectPage(source=source, url=final_url, links=codec.parse(response.content))
        digest = hashlib.sha256(response.content).hexdigest()
        links = None if refresh else cache.parsed(codec, digest)
        if links is None:
            links = codec.parse(response.content)
            cache.count("parsed")
            cache.keep_parsed(codec, digest, links)
        else:
            cache.count("reused")
        if key is not None:
            if httpcache.storable(200, kept):
                cache.store(key, StoredPage(final_url, time.time(), kept, digest))
            else:
                cache.forget(key)
        return ProjectPage(source=source, url=final_url, links=links)

    def _get_page(self, url: str, headers: Mapping[str, str]) -> Fetched:
        try:
            return get_whole(
                self._session, url, headers=headers, timeout=self._timeout, limit=MAX_PAGE_BYTES
            )
        except BodyTooLarge:
            raise IndexPageError(url, f"larger than {MAX_PAGE_BYTES} bytes (decoded)") from None
        except requests.RequestException as exc:
            raise IndexUnavailable(f"index {redact(url)} failed: {_reason(exc)}") from exc

    def _cache_key(self, url: str) -> str | None:
        """The page cache's key for ``url`` with the credentials the session will send; None
        when those cannot be known here (an auth other than the credential store's)."""
        auth = getattr(self._session, "auth", None)
        if auth is None:
            return page_key(url, ACCEPT, None)
        if isinstance(auth, StoreAuth):
            return page_key(url, ACCEPT, auth.header_for(url))
        return None

    def _stored_links(
        self, cache: PageCache, stored: StoredPage, source: IndexSource, name: NormalizedName
    ) -> tuple[Link, ...] | None:
        try:
            codec = LinksCodec(stored.headers.get("content-type", ""), stored.url, source.url, name)
        except IndexPageError:
            return None
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
        links = None if headers is None else self._stored_links(cache, stored, source, name)
        if headers is None or links is None:
            return None
        cache.count("revalidated")
        if headers != stored.headers or httpcache.freshness_lifetime(headers) > 0:
            cache.store(key, replace(stored, headers=headers, stored_at=time.time()))
        return ProjectPage(source=source, url=stored.url, links=links)

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
