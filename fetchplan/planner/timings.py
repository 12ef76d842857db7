"""Where planning time went: per-request records and per-phase totals, for ``--timings FILE``.

Every HTTP request the planner's session sends (and every local index read) is recorded as an
event with its start and end (seconds since planning began), its lane (the thread that made
it), its phase (``index``, ``metadata``, ``size``, ``hash``), a label, method, credential-free
URL, status and the bytes received; the resolver's run is one more event (phase ``resolve``).
On top, tasks report their totals: index pages fetched, metadata by source (``local``,
``pep658``, ``range``, ``whole``, ``sdist``) with request counts and bytes, and the resolver's
CPU and wall time. :meth:`Timings.to_dict` renders the document described by
``fetchplan/schemas/timings.schema.json``; ``fetchplan report`` draws its ``events``.

The phase of a request is the phase of the task running on that thread (a thread-local set by
:meth:`Timings.phase`), so code that only receives a session (metadata fetching) is attributed
correctly without knowing about timings. All methods are thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fetchplan import __version__
from fetchplan._urls import redact

log = logging.getLogger(__name__)

__all__ = ["FORMAT", "PHASES", "RequestRecord", "Timings"]

FORMAT = "fetchplan.plan-timings"
PHASES = ("index", "metadata", "size", "hash", "resolve", "other")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    start: float
    end: float
    thread: str
    phase: str
    method: str
    url: str
    status: int | None
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        """This request as a waterfall event (the fields ``fetchplan report`` reads first)."""
        label = f"{self.method} {self.url}".strip() or self.phase
        return {
            "start": round(self.start, 6),
            "end": round(self.end, 6),
            "lane": self.thread,
            "phase": self.phase,
            "label": label,
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "bytes": self.bytes,
        }


@dataclass(slots=True)
class _Total:
    count: int = 0
    seconds: float = 0.0
    requests: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "seconds": round(self.seconds, 6),
            "requests": self.requests,
            "bytes": self.bytes,
        }


class Timings:
    """Collects request records and phase totals during one planning run."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._origin = clock()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._requests: list[RequestRecord] = []
        self._tasks: dict[str, _Total] = defaultdict(_Total)
        self._metadata: dict[str, _Total] = defaultdict(_Total)
        self._resolver: dict[str, float] = {}
        self._cache: dict[str, dict[str, int]] | None = None
        self._finished: float | None = None

    def now(self) -> float:
        return self._clock()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Attribute this thread's requests to ``name`` while the block runs."""
        previous = getattr(self._local, "phase", None)
        self._local.phase = name
        try:
            yield
        finally:
            self._local.phase = previous

    def current_phase(self) -> str:
        phase = getattr(self._local, "phase", None)
        return phase if isinstance(phase, str) else "other"

    def record_request(  # noqa: PLR0917 - mirrors the fields of a record
        self,
        method: str,
        url: str,
        status: int | None,
        started: float,
        received: int,
        ended: float | None = None,
    ) -> None:
        """Record one request that began at ``started`` (a value of :meth:`now`)."""
        end = self._clock() if ended is None else ended
        record = RequestRecord(
            start=started - self._origin,
            end=end - self._origin,
            thread=threading.current_thread().name,
            phase=self.current_phase(),
            method=method,
            url=redact(url),
            status=status,
            bytes=received,
        )
        with self._lock:
            self._requests.append(record)
        log.debug(
            "%s %s -> %s, %d bytes in %.3f s (%s)",
            method, record.url, status, received, record.end - record.start, record.phase,
        )  # fmt: skip

    def add_task(self, phase: str, seconds: float, requests: int = 0, received: int = 0) -> None:
        """Add one finished task (an index page, a HEAD, a hash) to its phase's totals."""
        with self._lock:
            total = self._tasks[phase]
            total.count += 1
            total.seconds += seconds
            total.requests += requests
            total.bytes += received

    def add_metadata(self, source: str, seconds: float, requests: int, received: int) -> None:
        """Add one metadata fetch, by source (``local``, ``pep658``, ``range``, ...)."""
        with self._lock:
            total = self._metadata[source]
            total.count += 1
            total.seconds += seconds
            total.requests += requests
            total.bytes += received

    def set_resolver(
        self, *, cpu_seconds: float, started: float, ended: float, rounds: int
    ) -> None:
        """Record one resolver run: CPU time of its thread, and its span (values of now()).

        A plan for several targets resolves several times, some side by side: the totals add
        up (wall seconds of overlapping runs each count), and each run is its own event.
        """
        with self._lock:
            before = self._resolver
            self._resolver = {
                "cpu_seconds": round(before.get("cpu_seconds", 0.0) + cpu_seconds, 6),
                "wall_seconds": round(before.get("wall_seconds", 0.0) + ended - started, 6),
                "rounds": int(before.get("rounds", 0)) + rounds,
            }
            self._requests.append(
                RequestRecord(
                    start=started - self._origin,
                    end=ended - self._origin,
                    thread=threading.current_thread().name,
                    phase="resolve",
                    method="",
                    url="",
                    status=None,
                    bytes=0,
                )
            )

    def set_cache(self, *, pages: Mapping[str, int], metadata: Mapping[str, int]) -> None:
        """Record what the page and metadata caches did (counts by outcome)."""
        with self._lock:
            self._cache = {"pages": dict(pages), "metadata": dict(metadata)}

    def progress(self) -> tuple[int, int]:
        """Project pages loaded and metadata files read so far: for a status line."""
        with self._lock:
            # .get: indexing the defaultdict would add an empty phase to the document.
            pages = self._tasks.get("index")
            metadata = sum(total.count for total in self._metadata.values())
            return (pages.count if pages is not None else 0), metadata

    def finish(self) -> None:
        with self._lock:
            self._finished = self._clock()

    @property
    def requests(self) -> list[RequestRecord]:
        """The requests recorded so far (the resolver's span excluded)."""
        with self._lock:
            return [r for r in self._requests if r.phase != "resolve"]

    def to_dict(self) -> dict[str, Any]:
        """The timings document (``fetchplan/schemas/timings.schema.json``)."""
        with self._lock:
            end = self._finished if self._finished is not None else self._clock()
            events = sorted(self._requests, key=lambda r: (r.start, r.end, r.url))
            by_phase: dict[str, _Total] = defaultdict(_Total)
            for record in events:
                if record.phase == "resolve":
                    continue
                total = by_phase[record.phase]
                total.requests += 1
                total.bytes += record.bytes
                total.seconds += record.end - record.start
                total.count += 1
            return {
                "format": FORMAT,
                "version": 1,
                "creator": {"name": "fetchplan", "version": __version__},
                "total_seconds": round(end - self._origin, 6),
                "tasks": {k: v.to_dict() for k, v in sorted(self._tasks.items())},
                "metadata": {k: v.to_dict() for k, v in sorted(self._metadata.items())},
                "resolver": dict(self._resolver)
                or {"cpu_seconds": 0.0, "wall_seconds": 0.0, "rounds": 0},
                "requests_by_phase": {k: v.to_dict() for k, v in sorted(by_phase.items())},
                "events": [r.to_dict() for r in events],
                **({"cache": self._cache} if self._cache is not None else {}),
            }
