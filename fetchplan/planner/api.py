"""The planner's library entry: :func:`make_plan` turns :class:`PlanOptions` into a plan.

It reads the inputs first: requirements files (:mod:`.reqfile`), index settings (command
line, then ``PIP_*`` variables and pip's configuration, then pip's default index). Once the
first index is known, connections to it open in the background (:mod:`.preconnect`) while the
rest of the planner is imported and run (:mod:`.planning`): credentials (resolved before any
thread starts), the target environments, a bounded thread pool sharing one HTTP session, the
resolver (once per target, and once more per target for the build requirements of its sdists),
and finally hashes, sizes and local copies of every chosen file. Only index pages and metadata
are downloaded, unless ``compute_hashes`` asks for files whose index gives no hash.
``fetchplan plan`` and ``fetchplan run`` both call :func:`make_plan`.

This module imports neither the HTTP stack nor the resolver (a test checks it), so that those
imports are what the connections overlap.
"""

from __future__ import annotations

import datetime
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit
from urllib.request import url2pathname

from packaging.utils import canonicalize_name

from fetchplan._netrc import keyring_installed, netrc_credentials
from fetchplan._urls import is_secure_or_trusted, origin, parses, redact
from fetchplan.errors import InputError
from fetchplan.pipconfig import PipSettings, pip_default_index, read_pip_settings
from fetchplan.planner import preconnect, reqfile
from fetchplan.planner.sources import (
    ACCEPT,
    SESSION_HEADERS,
    IndexSource,
    IndexStrategy,
    source_for,
)
from fetchplan.planner.timings import Timings

if TYPE_CHECKING:
    from fetchplan.cache import ArtifactCache
    from fetchplan.planner.targets import TargetSpec
    from fetchplan.schemas.plan import Plan

__all__ = [
    "DEFAULT_JOBS",
    "PlanOptions",
    "PlanResult",
    "Sources",
    "early_conditions",
    "early_pages",
    "find_sources",
    "make_plan",
    "pip_settings",
    "read_requirements",
]

log = logging.getLogger(__name__)

FormatOp = tuple[Literal["no_binary", "only_binary"], str]

DEFAULT_JOBS = 50
"""Index and metadata requests each wait a round trip for a few kB, so many in flight keep a
high-latency link busy; with a few hundred of them, a wider fan-out also keeps the next level
of the dependency graph from queueing behind the current one (the large bench set: 32 -> 50
took its plan from 1.28 s to 1.24 s over a 25 ms each-way link, 10 alternating runs)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanOptions:
    """Everything ``fetchplan plan`` accepts, as plain values (paths relative to the cwd)."""

    requirements: Sequence[str] = ()
    requirement_files: Sequence[Path] = ()
    constraint_files: Sequence[Path] = ()
    index_url: str | None = None
    extra_index_urls: Sequence[str] = ()
    find_links: Sequence[str] = ()
    no_index: bool = False
    trusted_hosts: Sequence[str] = ()
    index_strategy: IndexStrategy = IndexStrategy.FIRST_INDEX
    pre: bool = False
    exclude_newer: datetime.datetime | None = None
    """Files uploaded after this (aware) time, or of unknown upload time, are no candidates
    (uv's ``--exclude-newer``, already resolved to an absolute time: it is recorded)."""
    format_ops: Sequence[FormatOp] = ()
    """``--no-binary``/``--only-binary`` values in command-line order."""
    prefer_binary: bool = False
    require_hashes: bool = False
    python_version: str | None = None
    platforms: Sequence[str] = ()
    implementation: str | None = None
    abis: Sequence[str] = ()
    targets: Sequence[str | TargetSpec] = ()
    """Several target environments (``--target`` values, see :mod:`.targets`): one resolution
    each, one plan. Not combined with the single-target fields above."""
    build_deps: bool = True
    """Resolve the build requirements of every sdist into the plan (and prepare dynamic
    metadata with them); False plans sdists alone, as files to fetch."""
    output: Path = Path("plan.json")
    """Where the plan will be written: the destination is recorded relative to its directory."""
    dest: Path | None = None
    """Destination directory (relative to the cwd); default: ``wheels`` beside the plan file."""
    cache_dir: Path | None = None
    no_cache: bool = False
    """Use no cache at all: no artifacts, pages or metadata read from it or written to it."""
    refresh: bool = False
    """Ignore the pages and metadata in the cache (fetched again, and kept anew), uv's
    ``--refresh``."""
    refresh_packages: Sequence[str] = ()
    """Ignore the cached pages and metadata of these projects only (``--refresh-package``)."""
    compute_hashes: bool = False
    jobs: int = DEFAULT_JOBS
    """Parallel index and metadata requests (and connections opened ahead to the index)."""
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.25
    isolated: bool = False
    """Ignore ``PIP_*`` variables and pip's configuration files (pip's ``--isolated``)."""
    offline: bool = False
    """Open no network connection: only ``file://`` indexes, find-links directories and the
    cache serve; a source or file that needs the network is an error naming it."""
    use_netrc: bool = True
    pip_settings: PipSettings | None = None
    """Settings to use instead of asking pip (tests, embedding)."""
    default_index: str | None = None
    """pip's default index, when already known (else pip is asked, only if needed)."""


@dataclass(frozen=True, slots=True)
class PlanResult:
    plan: Plan
    timings: Timings
    cache: ArtifactCache | None = field(default=None)


@dataclass(frozen=True, slots=True)
class Sources:
    """The locations a plan reads, after pip's configuration and the requirement files."""

    pip: PipSettings
    indexes: tuple[IndexSource, ...]
    find_links: tuple[IndexSource, ...]
    trusted_hosts: tuple[str, ...]
    no_index: bool
    raw_urls: tuple[str, ...]
    """As given, credentials included: for the credential store only."""


def make_plan(options: PlanOptions, *, timings: Timings | None = None) -> PlanResult:
    """Resolve the requirements of ``options`` and return the (not yet written) plan.

    ``timings`` records where the time goes (a new :class:`Timings` when None); a caller that
    passes its own can read :meth:`Timings.progress` from another thread while this runs.

    One resolution per target (index pages and metadata fetched once for all of them), plus,
    per target with sdists, one resolution of their build requirements (wheels only); every
    chosen file becomes one artifact marked with the targets it serves (:mod:`.targets`).

    Raises :class:`~fetchplan.errors.FetchplanError` subclasses with one-line messages: bad
    input (:class:`InputError`), resolution failures (:class:`ResolutionError`), index
    failures (:class:`NetworkError`, ``IndexPageError``), sdists whose metadata or build
    requirements cannot be planned (:class:`SdistBuildError`) and hash mismatches.
    """
    if timings is None:
        timings = Timings()
    if options.jobs < 1:
        raise InputError(f"--jobs must be at least 1, not {options.jobs}")
    pip = pip_settings(options)
    requirement_set = read_requirements(options, pip)
    sources = find_sources(options, requirement_set.options, pip)
    pages, conditions = early_conditions(
        early_pages(requirement_set, sources, options.jobs, use_netrc=options.use_netrc), options
    )
    preconnector = (
        preconnect.start(
            sources.indexes[0].url,
            options.jobs,
            timeout=options.timeout,
            pages=pages,
            headers={**SESSION_HEADERS, "Accept": ACCEPT},
            conditions=conditions,
            ca_bundle=_ca_bundle(sources.pip),
            timings=timings,
        )
        if sources.indexes
        else None
    )
    # Imported now, while those connections open (see fetchplan.planner.preconnect).
    from fetchplan.planner.planning import plan

    try:
        return plan(
            options,
            timings=timings,
            pip=pip,
            requirement_set=requirement_set,
            sources=sources,
            preconnector=preconnector,
        )
    finally:
        if preconnector is not None:
            preconnector.close()


def early_pages(
    requirement_set: reqfile.RequirementSet,
    sources: Sources,
    limit: int,
    *,
    use_netrc: bool = True,
) -> tuple[str, ...]:
    """The first index's pages of the named requirements (at most ``limit``): what the planner
    asks for first, to be requested while it is imported (:mod:`.preconnect`).

    Nothing where the answers could not be used or the request must not be sent early: where
    credentials may apply to the index (early requests carry none, and a private index would
    only refuse them): a URL of its origin given with credentials, a netrc entry for its host
    (unless ``use_netrc`` is false), or the ``keyring`` library installed; and over https to
    a host of ``--trusted-host`` (its certificate is not verified) or with a client
    certificate.
    """
    if not sources.indexes or not sources.raw_urls:
        return ()
    index = sources.indexes[0]
    parts = urlsplit(sources.raw_urls[0])
    where = origin(index.url)
    if (
        any("@" in urlsplit(url).netloc and origin(url) == where for url in sources.raw_urls)
        or keyring_installed()
        or (use_netrc and netrc_credentials(where[1], warn=False) is not None)
    ):
        return ()
    trusted = {host.lower() for host in sources.trusted_hosts}
    if parts.scheme == "https" and (
        sources.pip.client_cert is not None
        or where[1] in trusted
        or parts.netloc.lower() in trusted
    ):
        return ()
    names = dict.fromkeys(r.name for r in requirement_set.requirements)
    return tuple(index.page_url(name) for name in list(names)[:limit])


def early_conditions(
    pages: Sequence[str], options: PlanOptions
) -> tuple[tuple[str, ...], dict[str, dict[str, str]]]:
    """The pages of :func:`early_pages` to request early, and the validators to send with each
    that the page cache holds a copy of, as the planner will (:mod:`.httpcache`).

    A page the cache holds fresh is left out: the planner sends no request for it. Early pages
    carry no credentials, so their cache key has none either.
    """
    if options.no_cache or options.refresh or not pages:
        return tuple(pages), {}
    from fetchplan.cache import PageCache, default_cache_dir, page_key
    from fetchplan.planner import httpcache

    cache = PageCache((options.cache_dir or default_cache_dir()) / "pages")
    refreshed = tuple(f"/{canonicalize_name(name)}/" for name in options.refresh_packages)
    now = time.time()
    send: list[str] = []
    conditions: dict[str, dict[str, str]] = {}
    for url in pages:
        if url.endswith(refreshed):
            send.append(url)
            continue
        stored = cache.lookup(page_key(url, ACCEPT, None))
        if stored is not None and httpcache.is_fresh(stored.headers, stored.stored_at, now):
            continue
        send.append(url)
        if stored is not None:
            conditions[url] = httpcache.conditional_headers(stored.headers)
    return tuple(send), conditions


def _ca_bundle(pip: PipSettings) -> str | None:
    """The CA bundle requests verifies https with (its environment variables first, then
    pip's ``cert``); None for certifi's."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or pip.cert


# -- inputs -----------------------------------------------------------------------------------


def pip_settings(options: PlanOptions) -> PipSettings:
    """pip's settings for ``options``: given ones, none when isolated, else pip's own."""
    if options.pip_settings is not None:
        return options.pip_settings
    if options.isolated:
        return PipSettings()
    return read_pip_settings()


def read_requirements(options: PlanOptions, pip: PipSettings) -> reqfile.RequirementSet:
    """The requirements and constraints of ``options`` and ``pip``, files read and merged."""
    # pip's configured --only-binary/--no-binary come first, so the command line overrides them.
    configured: list[reqfile.FormatOp] = [("only_binary", v) for v in pip.only_binary]
    configured += [("no_binary", v) for v in pip.no_binary]
    command_line = reqfile.RequirementSet(
        requirements=tuple(reqfile.parse_requirement_string(text) for text in options.requirements),
        options=reqfile.RequirementOptions(format_ops=(*configured, *options.format_ops)),
    )
    sets = [command_line]
    sets.extend(
        reqfile.parse_requirements_file(Path(path), constraint=True) for path in pip.constraints
    )
    sets.extend(reqfile.parse_requirements_file(path) for path in options.requirement_files)
    sets.extend(
        reqfile.parse_requirements_file(path, constraint=True) for path in options.constraint_files
    )
    merged = reqfile.merge(*sets)
    if not merged.requirements:
        raise InputError("nothing to plan: give requirements as arguments or with -r FILE")
    return merged


def find_sources(
    options: PlanOptions, file_options: reqfile.RequirementOptions, pip: PipSettings | None = None
) -> Sources:
    """The indexes, find-links locations and trusted hosts for ``options``, in pip's order."""
    if pip is None:
        pip = pip_settings(options)
    # pip's option parser takes configuration as defaults: a command-line --index-url replaces
    # the configured one, list options add to the configured lists.
    index_url = options.index_url if options.index_url is not None else pip.index_url
    if file_options.index_url is not None:
        index_url = file_options.index_url
    extra = [*pip.extra_index_urls, *options.extra_index_urls, *file_options.extra_index_urls]
    find_links = [*pip.find_links, *options.find_links, *file_options.find_links]
    trusted = [*pip.trusted_hosts, *options.trusted_hosts, *file_options.trusted_hosts]
    no_index = options.no_index or pip.no_index or file_options.no_index
    index_urls: list[str] = []
    if not no_index:
        if index_url is None:
            if options.offline:
                raise InputError(
                    "--offline: no index given, and the default index needs the network; give "
                    "--index-url file://... or --no-index --find-links DIR"
                )
            index_url = options.default_index or pip_default_index()
        index_urls = [index_url, *extra]
    indexes = _unique_sources(index_urls, "index")
    flat = _unique_sources(find_links, "find-links")
    if options.offline:
        remote = [s.url for s in (*indexes, *flat) if not s.url.startswith("file:")]
        if remote:
            raise InputError(
                f"--offline: {redact(remote[0])} needs the network; use file:// indexes and "
                "find-links directories only"
            )
    trusted_set = frozenset(trusted)
    for source in (*indexes, *flat):
        if not is_secure_or_trusted(source.url, trusted_set):
            raise InputError(
                f"{redact(source.url)}: plain http:// is accepted only for loopback hosts and "
                "hosts given with --trusted-host"
            )
    return Sources(
        pip=pip,
        indexes=indexes,
        find_links=flat,
        trusted_hosts=tuple(dict.fromkeys(trusted)),
        no_index=no_index,
        raw_urls=(*index_urls, *find_links),
    )


def _unique_sources(
    urls: Iterable[str], kind: Literal["index", "find-links"]
) -> tuple[IndexSource, ...]:
    seen: dict[str, IndexSource] = {}
    for url in urls:
        source = checked_source(url, kind)
        seen.setdefault(source.url, source)
    return tuple(seen.values())


def checked_source(given: str, kind: Literal["index", "find-links"]) -> IndexSource:
    """:func:`source_for` ``given``, refusing what no request could use: a URL whose host or
    port does not parse, a scheme other than http(s) and file, and an index that is a local
    directory which does not exist (pip and uv would find nothing there; the error would then
    blame the first requirement). A missing find-links location is reported when it is read.
    """
    what = f"{kind} {redact(given)!r}"
    if not parses(given):
        raise InputError(f"{what}: not a usable URL (its host or port does not parse)")
    source = source_for(given, kind)
    parts = urlsplit(source.url)
    if parts.scheme not in ("http", "https", "file"):
        raise InputError(
            f"{what}: unsupported URL scheme {parts.scheme!r}; give an http(s) URL or a "
            "local directory"
        )
    if kind == "index" and parts.scheme == "file":
        path = Path(url2pathname(parts.path))
        if not path.is_dir():
            if "://" in given:
                raise InputError(f"{what}: no such directory {path}")
            raise InputError(
                f"{what}: neither a URL nor an existing directory; an index is an http(s) URL "
                "or a local directory"
            )
    return source
