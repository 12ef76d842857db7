"""One executor per destination: an OS file lock in ``<dest>/.fetchplan/lock``.

The lock is ``filelock``'s (``flock`` on POSIX), so the kernel releases it when its holder
dies, even by SIGKILL. The holder writes who it is beside the lock, so a second executor can
say whom it is waiting for.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from fetchplan._fs import atomic_write_bytes
from fetchplan._parse import load_json
from fetchplan.errors import FetchplanError, FileFormatError

__all__ = ["DestinationBusy", "destination_lock"]


class DestinationBusy(FetchplanError):
    """Another executor holds the destination and we were told not to wait."""

    exit_code = 75  # EX_TEMPFAIL: try again later


def _owner(state_dir: Path, patience: float = 1.0) -> str:
    # The holder writes owner.json just after it takes the lock: give it a moment.
    deadline = time.monotonic() + patience
    while True:
        try:
            path = state_dir / "owner.json"
            data = load_json(path.read_text("utf-8"), str(path))
            return f"pid {int(data['pid'])} on {str(data['host'])[:100]}"
        except (OSError, ValueError, KeyError, TypeError, FileFormatError):
            if time.monotonic() >= deadline:
                return "another process"
            time.sleep(0.02)


@contextlib.contextmanager
def destination_lock(
    destination: Path, *, wait: bool, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the lock of ``destination`` for the duration of the ``with`` block.

    When another process holds it: raise :class:`DestinationBusy` if not ``wait``, else call
    ``on_wait`` with a message naming the holder and block until it is free.
    """
    state_dir = destination / ".fetchplan"
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(state_dir / "lock", thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _owner(state_dir)
        if not wait:
            raise DestinationBusy(
                f"{destination}: another fetchplan ({holder}) is fetching into it "
                "(--no-wait was given)"
            ) from None
        if on_wait is not None:
            on_wait(f"waiting for another fetchplan ({holder}) to finish with {destination}")
        lock.acquire()
    try:
        owner = {"pid": os.getpid(), "host": socket.gethostname()}
        atomic_write_bytes(state_dir / "owner.json", json.dumps(owner).encode("utf-8"))
        yield
    finally:
        with contextlib.suppress(OSError):
            (state_dir / "owner.json").unlink()
        lock.release()
