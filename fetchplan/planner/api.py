"""The planner's library entry: :func:`make_plan` turns :class:`PlanOptions` into a plan.

It reads the inputs first: requirements files (:mod:`.reqfile`), then the settings, merged
by pip's precedence in :mod:`.settings` (requirements files' options, command line, ``PIP_*``
variables and pip's configuration, pip's default index) and checked in :mod:`.locations`. Once the
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

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name

from fetchplan._netrc import keyring_installed, netrc_credentials
from fetchplan._urls import origin
from fetchplan.errors import InputError
from fetchplan.pipconfig import PipSettings
from fetchplan.planner import pins, preconnect, pyproject, reqfile
from fetchplan.planner.locations import Sources, find_sources, pip_settings
from fetchplan.planner.options import DEFAULT_JOBS, FormatOp, PlanOptions, PlanResult
from fetchplan.planner.settings import PlanSettings
from fetchplan.planner.sources import ACCEPT, SESSION_HEADERS
from fetchplan.planner.timings import Timings

__all__ = [
    "DEFAULT_JOBS",
    "FormatOp",
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
    if options.attestations:
        from fetchplan.planner.attestations import require_library

        require_library()
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
            ca_bundle=_ca_bundle(sources.settings),
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
        sources.settings.client_cert is not None
        or where[1] in trusted
        or parts.netloc.lower() in trusted
    ):
        return ()
    # A direct reference's project is never looked up on an index.
    names = dict.fromkeys(r.name for r in requirement_set.requirements if r.direct is None)
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


def _ca_bundle(plan_settings: PlanSettings) -> str | None:
    """The CA bundle requests verifies https with (its environment variables first, then
    pip's ``cert``); None for certifi's."""
    return (
        os.environ.get("REQUESTS_CA_BUNDLE")
        or os.environ.get("CURL_CA_BUNDLE")
        or plan_settings.cert
    )


# -- inputs -----------------------------------------------------------------------------------


def read_requirements(options: PlanOptions, pip: PipSettings) -> reqfile.RequirementSet:
    """The requirements and constraints of ``options`` and ``pip`` (its ``constraint``
    files), files read and merged. The merged ``options`` are the files' alone: the command
    line's and pip's come in with :func:`.settings.settings`."""
    projects, arguments = pyproject.project_inputs(
        options.requirement_files,
        options.requirements,
        extras=options.extras,
        all_extras=options.all_extras,
        groups=options.groups,
    )
    command_line = reqfile.RequirementSet(
        requirements=tuple(reqfile.parse_requirement_string(text) for text in arguments),
    )
    sets = [
        command_line,
        reqfile.RequirementSet(requirements=tuple(projects)),
        reqfile.RequirementSet(constraints=pins.upgrade_constraints(options.upgrade_packages)),
    ]
    sets.extend(
        reqfile.parse_requirements_file(Path(path), constraint=True) for path in pip.constraints
    )
    sets.extend(
        reqfile.parse_requirements_file(path)
        for path in options.requirement_files
        if not pyproject.is_pyproject(path)
    )
    sets.extend(
        reqfile.parse_requirements_file(path, constraint=True) for path in options.constraint_files
    )
    merged = reqfile.merge(*sets)
    if not merged.requirements:
        raise InputError(
            "nothing to plan: give requirements as arguments, with -r FILE or --group NAME"
        )
    return merged
