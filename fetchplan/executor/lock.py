"""One executor per destination: an OS file lock in ``<dest>/.fetchplan/lock``.

The lock is ``filelock``'s (``flock`` on POSIX), so the kernel releases it when its holder
dies, even by SIGKILL. The holder writes who it is beside the lock, so a second executor can
say whom it is waiting for (:mod:`fetchplan._lock`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from fetchplan._lock import hold_lock
from fetchplan.errors import FetchplanError

__all__ = ["DestinationBusy", "destination_lock"]


class DestinationBusy(FetchplanError):
    """Another executor holds the destination and we were told not to wait."""

    exit_code = 75  # EX_TEMPFAIL: try again later


@contextlib.contextmanager
def destination_lock(
    destination: Path, *, wait: bool, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the lock of ``destination`` for the duration of the ``with`` block.

    When another process holds it: raise :class:`DestinationBusy` if not ``wait``, else call
    ``on_wait`` with a message naming the holder and block until it is free.
    """
    with hold_lock(
        destination / ".fetchplan",
        wait=wait,
        on_wait=on_wait,
        busy=lambda holder: DestinationBusy(
            f"{destination}: another fetchplan ({holder}) is fetching into it (--no-wait was given)"
        ),
        waiting=lambda holder: (
            f"waiting for another fetchplan ({holder}) to finish with {destination}"
        ),
    ):
        yield
