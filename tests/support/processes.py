"""Child processes a test starts, owned so that none outlives it.

A test that fails between starting a process and waiting for it (an assertion, a timeout)
would leave the process running into the next test, where its pipes, once collected, raise
a ResourceWarning that fails an innocent test. :class:`Processes` (the ``processes``
fixture) starts each process and, at teardown, stops what is still running (SIGTERM, then
SIGKILL after a grace period), reaps it and closes its pipes.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["Processes"]

GRACE = 10.0
"""Seconds a process has to exit after SIGTERM before it is killed."""


class Processes:
    """Starts child processes and stops, reaps and closes every one of them at :meth:`close`."""

    def __init__(self, *, grace: float = GRACE) -> None:
        self._grace = grace
        self._started: list[subprocess.Popen[str]] = []

    def start(self, argv: Sequence[str | Path], **popen: Any) -> subprocess.Popen[str]:
        """:class:`subprocess.Popen` of ``argv`` with text pipes for stdout and stderr (unless
        ``popen`` says otherwise), owned until teardown."""
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        popen.setdefault("text", True)
        process: subprocess.Popen[str] = subprocess.Popen([str(a) for a in argv], **popen)
        self._started.append(process)
        return process

    @property
    def running(self) -> list[subprocess.Popen[str]]:
        """The processes started that have not exited."""
        return [p for p in self._started if p.poll() is None]

    def close(self) -> list[int]:
        """Stop every process still running, reap all, close their pipes; return the pids of
        those that had to be stopped."""
        stopped = [p.pid for p in self.running]
        for process in self.running:
            process.terminate()
        for process in self._started:
            try:
                process.communicate(timeout=self._grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
            except ValueError:
                process.wait()  # its pipes were read and closed by the test already
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        self._started.clear()
        return stopped
