"""Live progress of a run: counters the workers update, snapshots the reporter reads.

Workers never talk to a terminal. They bump thread-safe counters in :class:`ProgressState`;
the thread that runs the plan takes a :class:`Snapshot` a few times a second and hands it to
the :class:`Reporter` the caller chose (rich bars, plain lines, nothing).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fetchplan.executor.summary import FetchResult

__all__ = ["InFlight", "NullReporter", "ProgressState", "Reporter", "Snapshot"]


@dataclass(frozen=True, slots=True)
class InFlight:
    destination: str
    size: int | None
    done: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state of a run at one instant."""

    elapsed: float
    files_total: int
    files_done: int
    files_failed: int
    bytes_total: int
    bytes_done: int
    """Bytes of verified files plus bytes so far of files in flight (any source)."""
    network_bytes: int
    """Bytes received from servers in this run."""
    rate: float
    """Bytes per second received recently (a sliding window of a few seconds)."""
    retries: int
    in_flight: tuple[InFlight, ...]
    """Largest files in flight first."""

    @property
    def eta(self) -> float | None:
        """Seconds to go at the recent rate, or None when nothing is arriving."""
        left = self.bytes_total - self.bytes_done
        if left <= 0:
            return 0.0
        if self.rate <= 0:
            return None
        return left / self.rate


class Reporter(Protocol):
    """Receives a run's progress on the thread that called the executor."""

    def start(self, files: int, total_bytes: int) -> None: ...

    def update(self, snapshot: Snapshot) -> None: ...

    def note(self, message: str) -> None:
        """Something the user should know now (waiting for a lock, a file failed)."""

    def finish(self, result: FetchResult) -> None: ...


class NullReporter:
    """Reports nothing."""

    def start(self, files: int, total_bytes: int) -> None:
        pass

    def update(self, snapshot: Snapshot) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def finish(self, result: FetchResult) -> None:
        pass


class ProgressState:
    """Counters shared by the workers; every method is thread-safe and cheap."""

    _RATE_WINDOW = 5.0

    def __init__(self, files_total: int, bytes_total: int) -> None:
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self.files_total = files_total
        self.bytes_total = bytes_total
        self._files_done = 0
        self._files_failed = 0
        self._bytes_verified = 0
        self._network = 0
        self._retries = 0
        self._flight: dict[str, list[int | None]] = {}
        self._samples: deque[tuple[float, int]] = deque()

    def begin(self, destination: str, size: int | None) -> None:
        with self._lock:
            self._flight[destination] = [size, 0]

    def advance(self, destination: str, nbytes: int, *, network: bool) -> None:
        with self._lock:
            entry = self._flight.get(destination)
            if entry is not None:
                entry[1] = (entry[1] or 0) + nbytes
            if network:
                self._network += nbytes

    def restart(self, destination: str) -> None:
        """The file's bytes so far were dropped; it starts again from zero."""
        with self._lock:
            entry = self._flight.get(destination)
            if entry is not None:
                entry[1] = 0

    def retried(self) -> None:
        with self._lock:
            self._retries += 1

    def finish(self, destination: str, size: int) -> None:
        with self._lock:
            self._flight.pop(destination, None)
            self._files_done += 1
            self._bytes_verified += size

    def fail(self, destination: str) -> None:
        with self._lock:
            self._flight.pop(destination, None)
            self._files_failed += 1

    def snapshot(self) -> Snapshot:
        now = time.monotonic()
        with self._lock:
            samples = self._samples
            samples.append((now, self._network))
            while len(samples) > 2 and now - samples[0][0] > self._RATE_WINDOW:
                samples.popleft()
            first_t, first_b = samples[0]
            rate = (self._network - first_b) / (now - first_t) if now > first_t else 0.0
            flight = tuple(
                sorted(
                    (InFlight(d, e[0], e[1] or 0) for d, e in self._flight.items()),
                    key=lambda f: (-(f.size or f.done), f.destination),
                )
            )
            return Snapshot(
                elapsed=now - self._start,
                files_total=self.files_total,
                files_done=self._files_done,
                files_failed=self._files_failed,
                bytes_total=self.bytes_total,
                bytes_done=self._bytes_verified + sum(f.done for f in flight),
                network_bytes=self._network,
                rate=rate,
                retries=self._retries,
                in_flight=flight,
            )
