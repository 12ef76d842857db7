"""Run one command and measure it: wall time, CPU time and peak memory, and the bytes served.

CPU and memory come from ``wait4`` on the command's own process: user + system time of it and
every descendant it waited for, and ``ru_maxrss`` (the largest resident set of it or any such
descendant, not their sum). ``ip netns exec`` execs the command in place, so the process waited
for is the command itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["AccessLog", "CpuGate", "Sample", "Scratch", "cpu_probe", "disk_bytes", "run_measured"]


@dataclass
class Sample:
    """One measured run of one command."""

    wall_s: float
    cpu_s: float
    maxrss_mb: float
    returncode: int
    killed: bool = False
    server_bytes: int = 0
    requests: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AccessLog:
    """nginx's access log, read incrementally: bytes sent and requests since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def take(self) -> tuple[int, int, list[str]]:
        """(bytes sent, requests, request paths) logged since the last mark; then mark."""
        if not self.path.exists():
            return 0, 0, []
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        # Only whole lines; a line still being written is read next time.
        end = data.rfind(b"\n") + 1
        self.offset += end
        total = 0
        paths: list[str] = []
        for line in data[:end].decode("utf-8", "replace").splitlines():
            parts = line.split(" ")
            if len(parts) < 3:
                continue
            total += int(parts[0])
            paths.append(parts[2])
        return total, len(paths), paths


class Scratch:
    """Working directories of measured commands, all deleted together when the bench ends.

    Deleting a run's directory (a venv of 30k files, a cache) right after it would slow the
    next measured command: on ext4 without a journal, as on the machine this bench was
    written on, allocating an inode skips each one freed in the last 1 to 6 minutes
    (``recently_deleted`` in fs/ext4/ialloc.c), and after a large deletion that scan took
    most of the next install's system time (run of the large set: 7.9 s of system time in a
    fresh directory, 17.3 s right after deleting the previous run's). Whichever tool came
    after a deletion paid for it, so nothing is deleted until every command has run.
    """

    def __init__(self, parent: Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fpbench-", dir=parent))

    def new(self) -> Path:
        """A new empty directory, kept until :meth:`close`."""
        return Path(tempfile.mkdtemp(dir=self.root))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def cpu_probe() -> float:
    """Seconds a fixed pure-Python loop takes here now: the machine's speed at this moment."""
    started = time.perf_counter()
    total = 0
    for i in range(1_000_000):
        total += i
    return time.perf_counter() - started


class CpuGate:
    """Holds each measured command until the machine runs at its usual speed.

    The virtual machines this bench runs on have phases in which every process runs at half
    speed (the probe above, 0.04 s at best, takes 0.08 s then); a sample taken in one measures
    the neighbours, and hits the CPU-bound tool harder than the one waiting on the network.
    Before each command the gate probes until the probe is within ``tolerance`` of the fastest
    probe seen, for at most ``max_wait`` seconds, and says what it found.
    """

    def __init__(
        self,
        probe: Callable[[], float] = cpu_probe,
        *,
        tolerance: float = 1.25,
        max_wait: float = 180.0,
        pause: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._probe = probe
        self._tolerance = tolerance
        self._max_wait = max_wait
        self._pause = pause
        self._sleep = sleep
        self.fastest = float("inf")
        self.waited_s = 0.0

    def wait(self) -> tuple[float, bool]:
        """Probe until the machine is at speed: the last probe (s) and whether it was."""
        waited = 0.0
        while True:
            probe = min(self._probe(), self._probe())
            self.fastest = min(self.fastest, probe)
            steady = probe <= self.fastest * self._tolerance
            if steady or waited >= self._max_wait:
                self.waited_s += waited
                return probe, steady
            self._sleep(self._pause)
            waited += self._pause


def disk_bytes(root: Path) -> int:
    """Bytes of the regular files under ``root``, each inode once (a hard link is not a copy)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))  # noqa: PTH118
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_size
    return total


def run_measured(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log: Path,
    timeout: float,
    kill_after: float | None = None,
    kill_when: Callable[[], bool] | None = None,
) -> Sample:
    """Run ``argv``; stdout and stderr go to ``log``.

    It is killed with SIGKILL after ``timeout`` or ``kill_after`` seconds, or as soon as
    ``kill_when()`` (polled every 20 ms) is true.
    """
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        killed = threading.Event()

        def _kill(sig: int) -> None:
            killed.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)

        timers = [threading.Timer(timeout, _kill, (signal.SIGKILL,))]
        if kill_after is not None:
            timers.append(threading.Timer(kill_after, _kill, (signal.SIGKILL,)))
        done = threading.Event()
        if kill_when is not None:

            def _watch() -> None:
                while not done.wait(0.02):
                    if kill_when():
                        _kill(signal.SIGKILL)
                        return

            threading.Thread(target=_watch, daemon=True).start()
        for t in timers:
            t.daemon = True
            t.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM): the command must not outlive the bench.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        finally:
            done.set()
            for t in timers:
                t.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    # Anything the command left running in its session (a stray server, a worker) goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return Sample(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        maxrss_mb=usage.ru_maxrss / 1024,
        returncode=proc.returncode,
        killed=killed.is_set(),
    )
