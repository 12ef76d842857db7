"""How the planner reaches the indexes: its HTTP session, and :func:`open_indexes` for the
commands that only read indexes (``fetchplan import`` looking pinned files up by hash).

Both read the same locations :func:`~fetchplan.planner.api.make_plan` would, through
:func:`.locations.find_sources`, with the same credentials, trusted hosts, TLS files, timeout
and retry policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests

from fetchplan._offline import disable_network
from fetchplan._urls import is_secure_or_trusted
from fetchplan.auth import CredentialStore
from fetchplan.planner import reqfile
from fetchplan.planner.http import HttpPolicy, make_session
from fetchplan.planner.index import IndexClient, IndexSource
from fetchplan.planner.locations import Sources, find_sources
from fetchplan.planner.options import PlanOptions
from fetchplan.planner.preconnect import Preconnector
from fetchplan.planner.pyproject import is_pyproject
from fetchplan.planner.timings import Timings

__all__ = ["IndexAccess", "open_indexes", "planner_session"]


@dataclass(frozen=True, slots=True)
class IndexAccess:
    """The locations :func:`make_plan` would read, and a client to read them with."""

    client: IndexClient
    session: requests.Session
    indexes: tuple[IndexSource, ...]
    find_links: tuple[IndexSource, ...]
    trusted_hosts: frozenset[str]

    def url_ok(self, url: str) -> bool:
        """True when a file at ``url`` may be fetched (https, loopback or a trusted host)."""
        return is_secure_or_trusted(url, self.trusted_hosts)

    def close(self) -> None:
        self.session.close()


def open_indexes(options: PlanOptions) -> IndexAccess:
    """The indexes and find-links locations :func:`make_plan` would read for ``options``.

    The same settings in the same order: the command-line values of ``options``, the options
    written in ``options.requirement_files`` (their requirements are ignored), ``PIP_*``
    variables and pip's configuration (unless ``isolated``), then pip's default index. The
    client shares one session with make_plan's credentials, trusted hosts, timeout and retry
    policy; nothing is requested here. The caller closes it. Raises :class:`InputError` for a
    plain-http location that is neither loopback nor trusted, as make_plan does.
    """
    file_options = reqfile.merge(
        *(
            reqfile.parse_requirements_file(path)
            for path in options.requirement_files
            if not is_pyproject(path)
        )
    ).options
    sources = find_sources(options, file_options)
    session = planner_session(options, sources, None)
    return IndexAccess(
        client=IndexClient(session, timeout=options.timeout),
        session=session,
        indexes=sources.indexes,
        find_links=sources.find_links,
        trusted_hosts=frozenset(sources.trusted_hosts),
    )


def planner_session(
    options: PlanOptions,
    sources: Sources,
    timings: Timings | None,
    preconnector: Preconnector | None = None,
) -> requests.Session:
    """The one HTTP session of a plan (or of :func:`open_indexes`): credentials of the
    locations of ``sources`` (resolved now, before any thread starts), the trusted hosts, pip's
    TLS files, the retry policy of ``options``; with ``options.offline``, no network at all."""
    store = CredentialStore(sources.raw_urls, use_netrc=options.use_netrc)
    if not options.offline:
        store.preload(s.url for s in (*sources.indexes, *sources.find_links))
    policy = HttpPolicy(
        timeout=options.timeout,
        retries=options.retries,
        backoff=options.backoff,
        pool_size=options.jobs,
    )
    session = make_session(
        policy,
        store,
        trusted_hosts=sources.trusted_hosts,
        timings=timings,
        preconnector=preconnector,
    )
    sources.settings.apply_tls(session)
    if options.offline:
        # Whatever a file:// page links to, nothing leaves the machine.
        disable_network(session)
    return session
