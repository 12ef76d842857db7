"""Finding a plan's files in a mirror, by file name: the plan stays the only source of truth.

A mirror is a local directory or a URL. A directory is searched flat (``DIR/<filename>``), in
a ``files/`` subdirectory, and through PEP 503 pages (``DIR/<project>/index.html`` or
``DIR/simple/<project>/...``, HTML or PEP 691 JSON), so a fetch destination, a bundle, a
``pip download`` directory and a static index all serve. A URL is read as a PEP 503/691 index
(``URL/<project>/``, the link whose file name matches) and else as a flat directory
(``URL/<filename>``). What a mirror offers is only a place to look: the executor verifies the
bytes against the plan's sha256 and size like any other download.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit
from urllib.request import url2pathname

from packaging.utils import canonicalize_name

from fetchplan._parse import load_json
from fetchplan._urls import is_secure_or_trusted, redact, split_credentials
from fetchplan.errors import FileFormatError, InputError
from fetchplan.executor.context import Context
from fetchplan.executor.transfer import GiveUp, TryAgain, open_url
from fetchplan.schemas.plan import Artifact

__all__ = ["MirrorIndex", "MirrorLocation", "parse_mirror", "parse_page"]

log = logging.getLogger(__name__)

_PAGE_LIMIT = 32 << 20
_JSON_TYPE = "application/vnd.pypi.simple.v1+json"
_ACCEPT = f"{_JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"


@dataclass(frozen=True, slots=True)
class MirrorLocation:
    """Where a mirror is. ``url`` never carries credentials; ``given`` is as the user wrote it
    (credentials included), for the credential store only."""

    url: str
    given: str

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file:")

    @property
    def directory(self) -> Path:
        return Path(url2pathname(urlsplit(self.url).path))


def parse_mirror(text: str, trusted_hosts: frozenset[str] = frozenset()) -> MirrorLocation:
    """The mirror ``--mirror TEXT`` names: a directory (path or ``file://`` URL) that must
    exist, or an ``http(s)://`` URL (plain http only for loopback and trusted hosts)."""
    if "://" not in text:
        path = Path(text)
    else:
        scheme = urlsplit(text).scheme.lower()
        if scheme == "file":
            path = Path(url2pathname(urlsplit(text).path))
        elif scheme in ("http", "https"):
            clean, _ = split_credentials(text)
            if not is_secure_or_trusted(clean, trusted_hosts):
                raise InputError(
                    f"--mirror {redact(text)}: plain http:// is accepted only for loopback "
                    "hosts and hosts given with --trusted-host"
                )
            base = clean.split("#", 1)[0].split("?", 1)[0]
            return MirrorLocation(url=base.rstrip("/") + "/", given=text)
        else:
            raise InputError(f"--mirror {redact(text)}: not a directory or an http(s) URL")
    if not path.is_dir():
        raise InputError(f"--mirror {text}: no such directory")
    url = path.resolve().as_uri().rstrip("/") + "/"
    return MirrorLocation(url=url, given=url)


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.hrefs.append(str(values["href"]))
        elif tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"]


def _filename_of(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def parse_page(data: bytes, page_url: str, *, json_page: bool) -> dict[str, str]:
    """File name -> absolute URL (fragment dropped) of every link on a PEP 503/691 page.

    Malformed pages yield what could be read; a mirror page is only a hint.
    """
    links: dict[str, str] = {}
    if json_page:
        try:
            document: Any = load_json(data, page_url)
        except FileFormatError:
            return links
        files = document.get("files") if isinstance(document, dict) else None
        for entry in files if isinstance(files, list) else []:
            if not isinstance(entry, dict):
                continue
            name, href = entry.get("filename"), entry.get("url")
            if isinstance(name, str) and isinstance(href, str):
                links.setdefault(name, urljoin(page_url, href).split("#", 1)[0])
        return links
    parser = _Anchors()
    with contextlib.suppress(AssertionError):  # HTMLParser's complaint about broken markup
        parser.feed(data.decode("utf-8", "replace"))
        parser.close()
    base = urljoin(page_url, parser.base) if parser.base else page_url
    for href in parser.hrefs:
        url = urljoin(base, href).split("#", 1)[0]
        name = _filename_of(url)
        if name:
            links.setdefault(name, url)
    return links


class MirrorIndex:
    """Look-ups of a plan's file names in one mirror; safe for many worker threads.

    Each project page is read at most once per run.
    """

    def __init__(self, location: MirrorLocation, trusted_hosts: frozenset[str]) -> None:
        self.location = location
        self._trusted = trusted_hosts
        self._lock = threading.Lock()
        self._pages: dict[str, dict[str, str]] = {}
        self._page_locks: dict[str, threading.Lock] = {}

    @property
    def url(self) -> str:
        """The mirror's URL, without credentials."""
        return self.location.url

    def locate(self, artifact: Artifact, ctx: Context) -> str | None:
        """The URL (``file://`` or ``http(s)://``, no credentials) where the mirror offers
        ``artifact.filename``, or None when it has no such file. Never raises for an
        unreadable or broken mirror page: that is logged and counts as "not offered"."""
        if self.location.is_local:
            return self._locate_local(artifact)
        return self._locate_remote(artifact, ctx)

    def _page(self, key: str, read: Callable[[], dict[str, str]]) -> dict[str, str]:
        with self._lock:
            lock = self._page_locks.setdefault(key, threading.Lock())
        with lock:
            page = self._pages.get(key)
            if page is None:
                page = read()
                self._pages[key] = page
            return page

    # -- a directory -------------------------------------------------------------------------

    def _locate_local(self, artifact: Artifact) -> str | None:
        root = self.location.directory
        filename = artifact.filename
        for candidate in (root / filename, root / "files" / filename):
            if candidate.is_file():
                return candidate.absolute().as_uri()
        project = canonicalize_name(artifact.name)
        for page_dir in (root / project, root / "simple" / project):
            url = self._page(str(page_dir), functools.partial(_local_page, page_dir)).get(filename)
            if url is not None:
                return url
        return None

    # -- a URL -------------------------------------------------------------------------------

    def _locate_remote(self, artifact: Artifact, ctx: Context) -> str | None:
        project = canonicalize_name(artifact.name)
        page_url = f"{self.location.url}{project}/"
        links = self._page(page_url, lambda: self._remote_page(page_url, ctx))
        url = links.get(artifact.filename)
        if url is not None:
            return url
        return f"{self.location.url}{quote(artifact.filename)}"

    def _remote_page(self, page_url: str, ctx: Context) -> dict[str, str]:
        try:
            response = open_url(page_url, {"Accept": _ACCEPT}, ctx)
        except (TryAgain, GiveUp) as exc:
            log.warning("mirror page %s: %s", redact(page_url), exc)
            return {}
        with contextlib.closing(response):
            if response.status_code in (404, 410):
                return {}
            if response.status_code != 200:
                log.warning("mirror page %s: HTTP %d", redact(page_url), response.status_code)
                return {}
            try:
                data = response.raw.read(_PAGE_LIMIT + 1, decode_content=True)
            except Exception as exc:  # noqa: BLE001 - any read failure only loses a hint
                log.warning("mirror page %s: %s", redact(page_url), exc)
                return {}
            if len(data) > _PAGE_LIMIT:
                log.warning("mirror page %s: larger than %d bytes", redact(page_url), _PAGE_LIMIT)
                return {}
            final = split_credentials(response.url or page_url)[0]
            kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        links = parse_page(data, final, json_page=kind in (_JSON_TYPE, "application/json"))
        kept: dict[str, str] = {}
        for name, url in links.items():
            clean = split_credentials(url)[0]
            if urlsplit(clean).scheme in ("http", "https") and is_secure_or_trusted(
                clean, self._trusted
            ):
                kept[name] = clean
            else:
                log.debug("mirror page %s: ignoring link %s", redact(page_url), redact(url))
        return kept


def _local_page(directory: Path) -> dict[str, str]:
    base = directory.absolute().as_uri().rstrip("/") + "/"
    for page, json_page in (("index.json", True), ("index.html", False)):
        path = directory / page
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("mirror page %s: %s", path, exc)
            continue
        links = parse_page(data, base + page, json_page=json_page)
        return {
            name: url
            for name, url in links.items()
            if url.startswith("file:") and Path(url2pathname(urlsplit(url).path)).is_file()
        }
    return {}
