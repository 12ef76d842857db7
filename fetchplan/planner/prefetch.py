"""Background fetching: the finder the resolver asks, which fetches ahead of it.

As soon as a dependency is known (a user requirement, or a requirement read from fetched
metadata), :meth:`PrefetchFinder.prefetch` queues its index page on a bounded thread pool;
once the page is in, the metadata of its likely candidate (the newest version the requirement
allows) is queued too, and that metadata's own dependencies in turn. The resolver, working on
the main thread, finds most answers ready, so planning time grows with the depth of the
dependency graph rather than with the number of projects.

Each piece of work is a :class:`_Cell`, computed at most once: by a pool worker when it gets to
it, or on the spot by the thread that needs it first (so the resolver never waits behind
speculative work queued earlier). Errors are kept in the cell and raised only to a thread that
asks for the value, so a failed guess that the resolver never needs costs nothing.

Thread safety: cells are created under one lock; the shared HTTP session and credential store
are safe as :mod:`fetchplan.planner.http` explains; the index client guards its own caches.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from contextlib import nullcontext
from typing import Generic, TypeVar

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from fetchplan.errors import FetchplanError
from fetchplan.planner.candidates import (
    Candidate,
    DistMetadata,
    FormatControl,
    ProjectCandidates,
)
from fetchplan.planner.index import IndexClient, Link, ProjectPage
from fetchplan.planner.metadata import UnusableMetadata
from fetchplan.planner.provider import iter_matches, preferred_first
from fetchplan.planner.sources import IndexSource, IndexStrategy
from fetchplan.planner.target import TargetEnv
from fetchplan.planner.timings import Timings

__all__ = ["IndexStrategy", "MetadataMismatch", "PrefetchFinder"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class MetadataMismatch(UnusableMetadata):
    """A file's metadata names another project or version than its file name."""


_PENDING, _RUNNING, _DONE = range(3)


class _Cell(Generic[T]):
    """A value computed once, by whichever thread gets to it first."""

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute = compute
        self._lock = threading.Lock()
        self._state = _PENDING
        self._done = threading.Event()
        self._value: T | None = None
        self._error: BaseException | None = None
        self._then: list[Callable[[T], None]] = []

    def run(self) -> None:
        with self._lock:
            if self._state != _PENDING:
                return
            self._state = _RUNNING
        try:
            value = self._compute()
        except BaseException as exc:  # noqa: BLE001 - kept for whoever asks; re-raised there
            with self._lock:
                self._error = exc
                self._state = _DONE
                self._then.clear()
            self._done.set()
            return
        with self._lock:
            self._value = value
            self._state = _DONE
            callbacks, self._then = self._then, []
        self._done.set()
        for callback in callbacks:
            _safely(callback, value)

    def then(self, callback: Callable[[T], None]) -> None:
        """Run ``callback(value)`` once the value is known (now, if it already is)."""
        with self._lock:
            if self._state != _DONE:
                self._then.append(callback)
                return
            value, error = self._value, self._error
        if error is None:
            _safely(callback, value)  # type: ignore[arg-type]

    def result(self) -> T:
        self.run()
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def _safely(callback: Callable[[T], None], value: T) -> None:
    # Callbacks only schedule more speculative work; a failure there must not hide the value.
    try:
        callback(value)
    except Exception:
        log.debug("prefetch callback failed", exc_info=True)


class PrefetchFinder:
    """The resolver's finder: project candidates and metadata, fetched ahead on a pool."""

    def __init__(
        self,
        *,
        client: IndexClient,
        indexes: Sequence[IndexSource],
        find_links: Sequence[IndexSource] = (),
        strategy: IndexStrategy = IndexStrategy.FIRST_INDEX,
        target: TargetEnv,
        formats: FormatControl | None = None,
        allowed_hashes: Mapping[NormalizedName, Mapping[str, frozenset[str]]] | None = None,
        url_ok: Callable[[str], bool] = lambda _url: True,
        fetch_metadata: Callable[[Link], DistMetadata],
        executor: Executor | None,
        timings: Timings | None = None,
        pre: bool = False,
        exclude_newer: _dt.datetime | None = None,
        exclude_newer_package: Mapping[NormalizedName, _dt.datetime | None] | None = None,
        direct: Callable[[NormalizedName], Link | None] = lambda _name: None,
        preferred: Mapping[NormalizedName, Sequence[Version]] | None = None,
    ) -> None:
        self._direct = direct
        self._client = client
        # The versions the provider tries first (kept pins) are the likely ones to prefetch.
        self._preferred = {name: frozenset(v) for name, v in (preferred or {}).items()}
        self._indexes = tuple(indexes)
        self._find_links = tuple(find_links)
        self._strategy = strategy
        self._target = target
        self._formats = formats or FormatControl()
        self._hashes = dict(allowed_hashes or {})
        self._url_ok = url_ok
        self._fetch_metadata = fetch_metadata
        self._executor = executor
        self._timings = timings
        self._pre = pre
        self._exclude_newer = exclude_newer
        self._exclude_newer_package = dict(exclude_newer_package or {})
        self._lock = threading.Lock()
        self._projects: dict[NormalizedName, _Cell[ProjectCandidates]] = {}
        self._metadata: dict[str, _Cell[DistMetadata]] = {}
        self._prefetched: set[tuple[NormalizedName, str, frozenset[str]]] = set()
        self._futures: list[Future[None]] = []

    # -- what the provider calls ---------------------------------------------------------

    def project(self, name: NormalizedName) -> ProjectCandidates:
        return self._project_cell(name).result()

    def metadata(self, candidate: Candidate) -> DistMetadata:
        if candidate.link is None:
            raise FetchplanError(f"{candidate}: no file to read metadata from")
        return self._metadata_cell(candidate.link).result()

    def prefetch(
        self,
        name: NormalizedName,
        specifier: SpecifierSet,
        extras: frozenset[str] = frozenset(),
    ) -> None:
        key = (name, str(specifier), extras)
        with self._lock:
            if key in self._prefetched:
                return
            self._prefetched.add(key)
        self._project_cell(name).then(lambda found: self._prefetch_likely(found, specifier, extras))

    def prefetch_metadata(self, candidate: Candidate) -> None:
        if candidate.link is not None:
            self._metadata_cell(candidate.link)

    def searched(self) -> list[str]:
        return [source.url for source in (*self._indexes, *self._find_links)]

    # -- internals ---------------------------------------------------------------------------

    def _submit(self, cell: _Cell[T]) -> None:
        if self._executor is None:
            return
        try:
            future = self._executor.submit(cell.run)
        except RuntimeError:
            # The pool is shutting down: the cell is still computed on demand.
            log.debug("prefetch pool closed; computing on demand")
            return
        with self._lock:
            self._futures = [f for f in self._futures if not f.done()]
            self._futures.append(future)

    def cancel_pending(self) -> int:
        """Drop speculative work not started yet (after resolution); return how much."""
        with self._lock:
            futures, self._futures = self._futures, []
        return sum(1 for future in futures if future.cancel())

    def _cut_off(self, name: NormalizedName) -> _dt.datetime | None:
        """The upload-time cut-off of ``name``'s files: its own, else the global one."""
        if name in self._exclude_newer_package:
            return self._exclude_newer_package[name]
        return self._exclude_newer

    def _project_cell(self, name: NormalizedName) -> _Cell[ProjectCandidates]:
        with self._lock:
            cell = self._projects.get(name)
            if cell is not None:
                return cell
            cell = _Cell(lambda: self._load_project(name))
            self._projects[name] = cell
        self._submit(cell)
        return cell

    def _metadata_cell(self, link: Link) -> _Cell[DistMetadata]:
        with self._lock:
            cell = self._metadata.get(link.url)
            if cell is not None:
                return cell
            cell = _Cell(lambda: self._load_metadata(link))
            self._metadata[link.url] = cell
        cell.then(self._prefetch_dependencies)
        self._submit(cell)
        return cell

    def _prefetch_likely(
        self, found: ProjectCandidates, specifier: SpecifierSet, extras: frozenset[str]
    ) -> None:
        matches = iter_matches(found, specifier, pre=self._pre)
        likely = next(preferred_first(matches, self._preferred.get(found.name, ())), None)
        if likely is not None and likely.link is not None:
            cell = self._metadata_cell(likely.link)
            if extras:
                cell.then(lambda metadata: self._prefetch_dependencies(metadata, extras))

    def _prefetch_dependencies(
        self, metadata: DistMetadata, extras: frozenset[str] = frozenset()
    ) -> None:
        """Prefetch what ``metadata`` requires; with ``extras``, only what those extras add
        (``name[extra]`` asked for: its dependencies would otherwise be found only when the
        resolver gets to that candidate, a few round trips late)."""
        for requirement in metadata.requires_dist:
            base = self._target.evaluate(requirement.marker)
            if (not extras and base) or (
                extras and not base and self._target.evaluate(requirement.marker, extras)
            ):
                self.prefetch(
                    canonicalize_name(requirement.name),
                    requirement.specifier,
                    frozenset(canonicalize_name(e) for e in requirement.extras),
                )

    def _load_project(self, name: NormalizedName) -> ProjectCandidates:
        link = self._direct(name)
        if link is not None:
            # A direct reference is the project's one candidate (no index is asked, and no
            # --exclude-newer applies: it has no upload time, and the user named the file).
            return ProjectCandidates(
                name,
                [ProjectPage.from_links(None, link.url, [link])],
                self._target,
                formats=self._formats,
                allowed_hashes=self._hashes.get(name),
                url_ok=self._url_ok,
                sources=[link.url],
            )
        started = time.monotonic()
        pages: list[ProjectPage] = []
        sources: list[str] = []
        quarantined: list[tuple[str, str | None]] = []
        found = False
        with self._timings.phase("index") if self._timings is not None else nullcontext():
            for location in self._find_links:
                page = self._client.find_links(location, name)
                if page.versions:
                    found = True
                    pages.append(page)
                    sources.append(location.url)
            for index in self._indexes:
                project_page = self._client.project_page(index, name)
                if project_page is None:
                    continue
                status = project_page.status
                if status is not None and status[0] == "quarantined":
                    # Refused like a missing project, but the index has it: with first-index,
                    # the next index is not asked for it either (that would invite confusion).
                    quarantined.append((index.url, status[1]))
                    if self._strategy is IndexStrategy.FIRST_INDEX:
                        break
                    continue
                found = True
                pages.append(project_page)
                sources.append(index.url)
                if self._strategy is IndexStrategy.FIRST_INDEX:
                    break
        # Nothing is decided yet: a version's files become candidates when first asked about.
        result = ProjectCandidates(
            name,
            pages,
            self._target,
            formats=self._formats,
            allowed_hashes=self._hashes.get(name),
            url_ok=self._url_ok,
            sources=sources,
            found=found,
            exclude_newer=self._cut_off(name),
            quarantined=quarantined,
        )
        if self._timings is not None:
            self._timings.add_task("index", time.monotonic() - started)
        log.debug("%s: %d versions from %s", name, len(result.versions), sources)
        return result

    def _load_metadata(self, link: Link) -> DistMetadata:
        started = time.monotonic()
        with self._timings.phase("metadata") if self._timings is not None else nullcontext():
            metadata = self._fetch_metadata(link)
        if metadata.name != link.name or metadata.version != link.version:
            raise MetadataMismatch(
                f"{link.url}: metadata says {metadata.name} {metadata.version}, "
                f"but the file name says {link.name} {link.version}"
            )
        if self._timings is not None:
            if metadata.requests == 0:
                # Read from a local file: no request went out, but the waterfall shows the work.
                with self._timings.phase("metadata"):
                    self._timings.record_request("READ", link.url, None, started, 0)
            self._timings.add_metadata(
                metadata.source,
                time.monotonic() - started,
                metadata.requests,
                metadata.bytes_received,
            )
        return metadata
