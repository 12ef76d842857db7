"""Running downloads in a bounded pool: ``jobs`` workers, at most ``per_host`` per host.

Work is handed out largest first, so the long transfers start early and the small ones fill
the gaps. Hand-out happens whenever a worker finishes (in its completion callback), not in the
consumer's loop, so a consumer that is slow with each result (say, installing it) never
starves the pool. Results arrive through a queue, each as soon as it is ready.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Done", "Scheduler"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Done(Generic[T, R]):
    """A finished item: exactly one of ``value`` and ``error`` is set."""

    item: T
    value: R | None
    error: BaseException | None


class Scheduler(Generic[T, R]):
    """Runs ``work(item)`` for every item; iterate to receive each :class:`Done`.

    ``host(item)`` names the host an item uses; ``weight(item)`` orders hand-out (largest
    first). :meth:`stop` stops handing out work; items not yet started are dropped.
    """

    def __init__(
        self,
        items: Sequence[T],
        work: Callable[[T], R],
        *,
        jobs: int,
        per_host: int,
        host: Callable[[T], str],
        weight: Callable[[T], int],
    ) -> None:
        if jobs < 1 or per_host < 1:
            raise ValueError("jobs and per_host must be at least 1")
        self._work = work
        self._host = host
        self._per_host = per_host
        self._jobs = jobs
        self._pending = sorted(items, key=lambda item: -weight(item))
        self._total = len(items)
        # Reentrant: a future that is already done runs its callback inside submit().
        self._lock = threading.RLock()
        self._busy: dict[str, int] = {}
        self._running = 0
        self._stopped = False
        self._results: queue.Queue[Done[T, R]] = queue.Queue()
        self._pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="fetch")

    def start(self) -> None:
        self._hand_out()

    def _hand_out(self) -> None:
        with self._lock:
            while not self._stopped and self._running < self._jobs:
                index = next(
                    (
                        i
                        for i, item in enumerate(self._pending)
                        if self._busy.get(self._host(item), 0) < self._per_host
                    ),
                    None,
                )
                if index is None:
                    return
                item = self._pending.pop(index)
                host = self._host(item)
                self._busy[host] = self._busy.get(host, 0) + 1
                self._running += 1
                future = self._pool.submit(self._work, item)
                future.add_done_callback(functools.partial(self._finished, item))

    def _finished(self, item: T, future: Future[R]) -> None:
        error = future.exception()
        done: Done[T, R] = Done(item, None if error is not None else future.result(), error)
        with self._lock:
            host = self._host(item)
            self._busy[host] -= 1
            self._running -= 1
        self._results.put(done)
        self._hand_out()

    def results(self, tick: float, on_tick: Callable[[], None]) -> Iterator[Done[T, R]]:
        """Each finished item as soon as it is ready; ``on_tick`` every ``tick`` seconds."""
        received = 0
        while received < self._total:
            with self._lock:
                if self._stopped and self._running == 0 and self._results.empty():
                    return
            try:
                done = self._results.get(timeout=tick)
            except queue.Empty:
                on_tick()
                continue
            received += 1
            on_tick()
            yield done

    def stop(self) -> None:
        """Hand out nothing more; drop what has not started."""
        with self._lock:
            self._stopped = True
            self._pending.clear()

    def close(self) -> None:
        """Stop and wait for the running items to end."""
        self.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def drain(self) -> list[Done[T, R]]:
        """Results that finished but were not received (call after :meth:`close`)."""
        left: list[Done[T, R]] = []
        while True:
            try:
                left.append(self._results.get_nowait())
            except queue.Empty:
                return left
