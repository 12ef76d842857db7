"""What every resolution of one planning run shares: index pages, metadata, the thread pool.

A plan for several targets resolves once per target, and every sdist in it brings one more
resolution of its build requirements. Each resolution has its own finder (candidates depend on
the target's tags and on the allowed formats), but they all go through one
:class:`CachingIndexClient` (each project page fetched once per run) and one metadata function
memoised by file URL (a file's metadata does not depend on the target), on one thread pool and
HTTP session. :class:`Memo` is the thread-safe compute-once map behind both.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import requests
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version

from fetchplan.cache import PageCache
from fetchplan.planner.candidates import DistMetadata, FormatControl
from fetchplan.planner.index import IndexClient, IndexSource, Link, ProjectPage
from fetchplan.planner.overrides import Overrides
from fetchplan.planner.prefetch import PrefetchFinder
from fetchplan.planner.provider import PlanProvider, Req
from fetchplan.planner.resolve import Resolution, resolve
from fetchplan.planner.sources import IndexStrategy
from fetchplan.planner.target import TargetEnv
from fetchplan.planner.timings import Timings

__all__ = ["CachingIndexClient", "Memo", "ResolveContext", "TargetResolution"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Slot(Generic[V]):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = False
        self.value: V | None = None
        self.error: Exception | None = None


class Memo(Generic[K, V]):
    """A value per key, computed once by the first caller; later callers wait for it.

    A failure is remembered like a value and raised to every caller, so one run never gives
    two answers for one key.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[K, _Slot[V]] = {}

    def get(self, key: K, compute: Callable[[], V]) -> V:
        """The value for ``key``, computing it with ``compute`` if no caller did yet."""
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot()
        with slot.lock:
            if not slot.done:
                try:
                    slot.value = compute()
                except Exception as exc:  # noqa: BLE001 - kept and raised to every caller
                    slot.error = exc
                slot.done = True
        if slot.error is not None:
            raise slot.error
        return slot.value  # type: ignore[return-value]


class CachingIndexClient(IndexClient):
    """An :class:`IndexClient` that fetches each project page once per run (thread-safe)."""

    def __init__(
        self,
        session: requests.Session,
        *,
        timeout: float = 30.0,
        timings: Timings | None = None,
        pages: PageCache | None = None,
        refresh: Callable[[NormalizedName], bool] = lambda _name: False,
    ) -> None:
        super().__init__(session, timeout=timeout, timings=timings, pages=pages, refresh=refresh)
        self._pages: Memo[tuple[str, str], ProjectPage | None] = Memo()

    def project_page(self, source: IndexSource, name: NormalizedName) -> ProjectPage | None:
        fetch = super().project_page
        return self._pages.get((source.url, name), lambda: fetch(source, name))


@dataclass(frozen=True, slots=True)
class TargetResolution:
    """One resolution: the chosen candidates and the metadata of each chosen file."""

    target: TargetEnv
    resolution: Resolution
    metadata: Mapping[NormalizedName, DistMetadata]


@dataclass(frozen=True, kw_only=True, slots=True)
class ResolveContext:
    """The shared services of one planning run; :meth:`resolve` runs one resolution on them."""

    client: IndexClient
    indexes: Sequence[IndexSource]
    find_links: Sequence[IndexSource] = ()
    strategy: IndexStrategy = IndexStrategy.FIRST_INDEX
    url_ok: Callable[[str], bool] = lambda _url: True
    fetch_metadata: Callable[[Link], DistMetadata]
    executor: Executor | None
    timings: Timings | None = None
    pre: bool = False
    exclude_newer: _dt.datetime | None = None
    """Files uploaded after this (aware) time, or of unknown upload time, are no candidates."""
    exclude_newer_package: Mapping[NormalizedName, _dt.datetime | None] = field(
        default_factory=dict
    )
    """A project's own cut-off instead of ``exclude_newer`` (None: none for it)."""
    direct: Callable[[NormalizedName], Link | None] = lambda _name: None
    """The one candidate file of a project a direct reference names (see :mod:`.direct`)."""
    direct_conflict: Callable[[NormalizedName, Requirement, str], str | None] = (
        lambda _name, _requirement, _parent: None
    )
    """Why a dependency's ``name @ URL`` of a parent clashes with the project's direct
    reference (two URLs for one project), or None (see :meth:`.direct.DirectPlanner.conflict`)."""

    def resolve(
        self,
        requirements: Sequence[Req],
        target: TargetEnv,
        *,
        formats: FormatControl,
        allowed_hashes: Mapping[NormalizedName, Mapping[str, frozenset[str]]] | None = None,
        constraints: Mapping[NormalizedName, SpecifierSet] | None = None,
        prefer_binary: bool = False,
        record_resolver: bool = True,
        overrides: Overrides | None = None,
        no_deps: bool = False,
        preferred: Mapping[NormalizedName, Sequence[Version]] | None = None,
    ) -> TargetResolution:
        """Resolve ``requirements`` (markers already applied) for ``target``.

        ``overrides`` stand in for the requirements on their projects and ``no_deps`` leaves
        every dependency out; the ``preferred`` versions are tried first where they match
        (:class:`PlanProvider`). ``record_resolver`` adds the resolver's time to the run's
        timings (off for the resolutions made while fetching metadata, which overlap the main
        one).
        """
        finder = PrefetchFinder(
            client=self.client,
            indexes=self.indexes,
            find_links=self.find_links,
            strategy=self.strategy,
            target=target,
            formats=formats,
            allowed_hashes=allowed_hashes,
            url_ok=self.url_ok,
            fetch_metadata=self.fetch_metadata,
            executor=self.executor,
            timings=self.timings,
            pre=self.pre,
            exclude_newer=self.exclude_newer,
            exclude_newer_package=self.exclude_newer_package,
            direct=self.direct,
            preferred=preferred,
        )
        provider = PlanProvider(
            finder,
            target,
            pre=self.pre,
            prefer_binary=prefer_binary,
            constraints=constraints,
            overrides=overrides,
            no_deps=no_deps,
            preferred=preferred,
            direct=lambda name: self.direct(name) is not None,
            url_conflict=self.direct_conflict,
        )
        try:
            resolution = resolve(
                provider, requirements, timings=self.timings if record_resolver else None
            )
        finally:
            finder.cancel_pending()
        metadata = {name: finder.metadata(c) for name, c in resolution.pins.items()}
        return TargetResolution(target=target, resolution=resolution, metadata=metadata)
