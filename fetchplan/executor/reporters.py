"""Ways to show a run's progress, chosen by the CLI: rich bars, plain lines, or nothing.

:class:`BarReporter` draws one overall bar (bytes, rate, ETA, files done/total) and a bar for
each of the largest files in flight, with rich. :class:`LineReporter` writes a plain line
every so often, for logs and CI. Both write only to the stream the caller gives them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO

from rich.filesize import decimal

from fetchplan.executor.progress import Snapshot

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from fetchplan.executor.summary import FetchResult

__all__ = ["BarReporter", "LineReporter", "NotesReporter", "format_eta", "format_rate"]


def format_rate(rate: float) -> str:
    return f"{decimal(int(rate))}/s"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA --:--"
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"ETA {hours}:{minutes:02d}:{secs:02d}" if hours else f"ETA {minutes:02d}:{secs:02d}"


class BarReporter:
    """Live rich bars on a terminal."""

    def __init__(self, console: Console, largest: int = 4) -> None:
        # rich's live display costs tens of milliseconds to import: only bars pay for it.
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        self._console = console
        self._largest = largest
        self._progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(bar_width=30),
            DownloadColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[eta]}"),
            TextColumn("{task.fields[files]}"),
            console=console,
            refresh_per_second=5,
            transient=True,
        )
        self._overall: TaskID | None = None
        self._files: dict[str, TaskID] = {}

    def start(self, files: int, total_bytes: int) -> None:
        self._overall = self._progress.add_task(
            "total", total=total_bytes or None, rate="", eta="", files=f"0/{files} files"
        )
        self._progress.start()

    def update(self, snapshot: Snapshot) -> None:
        if self._overall is None:
            return
        self._progress.update(
            self._overall,
            completed=snapshot.bytes_done,
            rate=format_rate(snapshot.rate),
            eta=format_eta(snapshot.eta),
            files=f"{snapshot.files_done}/{snapshot.files_total} files"
            + (f", {snapshot.files_failed} failed" if snapshot.files_failed else ""),
        )
        shown = {f.destination: f for f in snapshot.in_flight[: self._largest]}
        for name in list(self._files):
            if name not in shown:
                self._progress.remove_task(self._files.pop(name))
        for name, flight in shown.items():
            label = name if len(name) <= 40 else name[:37] + "..."
            if name not in self._files:
                self._files[name] = self._progress.add_task(
                    f"  {label}", total=flight.size, rate="", eta="", files=""
                )
            self._progress.update(self._files[name], completed=flight.done)

    def note(self, message: str) -> None:
        self._progress.console.print(message, markup=False, highlight=False)

    def finish(self, result: FetchResult) -> None:
        self._progress.stop()


class LineReporter:
    """A plain progress line every ``interval`` seconds (not on a terminal)."""

    def __init__(self, stream: TextIO, interval: float = 10.0) -> None:
        self._stream = stream
        self._interval = interval
        self._last = 0.0

    def start(self, files: int, total_bytes: int) -> None:
        self._last = time.monotonic()
        self._write(f"fetching {files} files, {decimal(total_bytes)}")

    def update(self, snapshot: Snapshot) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        self._last = now
        failed = f", {snapshot.files_failed} failed" if snapshot.files_failed else ""
        self._write(
            f"{snapshot.files_done}/{snapshot.files_total} files{failed}, "
            f"{decimal(snapshot.bytes_done)} of {decimal(snapshot.bytes_total)}, "
            f"{format_rate(snapshot.rate)}, {format_eta(snapshot.eta)}"
        )

    def note(self, message: str) -> None:
        self._write(message)

    def finish(self, result: FetchResult) -> None:
        pass

    def _write(self, line: str) -> None:
        self._stream.write(f"fetchplan: {line}\n")
        self._stream.flush()


class NotesReporter:
    """No progress at all; only what the user must know (a lock to wait for, failures)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def start(self, files: int, total_bytes: int) -> None:
        pass

    def update(self, snapshot: Snapshot) -> None:
        pass

    def note(self, message: str) -> None:
        self._stream.write(f"fetchplan: {message}\n")
        self._stream.flush()

    def finish(self, result: FetchResult) -> None:
        pass
