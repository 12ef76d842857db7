"""An OS file lock in a state directory that says who holds it: ``<dir>/lock``.

The lock is ``filelock``'s (``flock`` on POSIX), so the kernel releases it when its holder
dies, even by SIGKILL. The holder writes who it is beside the lock (``owner.json``), so a
second process can say whom it is waiting for. The executor locks a destination with it, the
installer an environment.
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

__all__ = ["hold_lock"]


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
def hold_lock(
    state_dir: Path,
    *,
    wait: bool,
    busy: Callable[[str], FetchplanError],
    on_wait: Callable[[str], None] | None = None,
    waiting: Callable[[str], str] = lambda holder: f"waiting for another fetchplan ({holder})",
) -> Iterator[None]:
    """Hold the lock in ``state_dir`` (made if missing) for the duration of the ``with`` block.

    When another process holds it: raise ``busy(holder)`` if not ``wait``, else call
    ``on_wait`` with ``waiting(holder)`` and block until it is free. ``holder`` names the
    process holding the lock.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(state_dir / "lock", thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _owner(state_dir)
        if not wait:
            raise busy(holder) from None
        if on_wait is not None:
            on_wait(waiting(holder))
        lock.acquire()
    try:
        owner = {"pid": os.getpid(), "host": socket.gethostname()}
        atomic_write_bytes(state_dir / "owner.json", json.dumps(owner).encode("utf-8"))
        yield
    finally:
        with contextlib.suppress(OSError):
            (state_dir / "owner.json").unlink()
        lock.release()
