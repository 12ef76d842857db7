"""What the commands tell a person while they work: a live status line and uv's summaries.

The live line is drawn on a terminal only (redrawn in place from a background thread, then
erased); piped output gets none of it, only the summary lines the commands print at the end.
The summaries read as uv's do (``Resolved 12 packages in 340ms``, `` + name==version``), so
a person who knows one tool reads the other.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TextIO

from packaging.utils import canonicalize_name

__all__ = ["Change", "LiveLine", "change_lines", "elapsed", "packages"]

Change = tuple[str, str, str]
"""``(sign, name, version)``: ``+`` installed, ``-`` removed, ``~`` reinstalled."""

_ERASE = "\r\x1b[2K"


def elapsed(seconds: float) -> str:
    """A duration as uv writes one: ``0.52ms``, ``340ms``, ``2.05s``, ``1m 05s``."""
    if seconds >= 60:
        whole = int(seconds)
        return f"{whole // 60}m {whole % 60:02d}s"
    if seconds >= 1:
        return f"{int(seconds)}.{int(seconds * 100) % 100:02d}s"
    millis = int(seconds * 1000)
    if millis > 0:
        return f"{millis}ms"
    return f"0.{int(seconds * 100_000) % 100:02d}ms"


def packages(count: int) -> str:
    """``1 package``, ``3 packages``."""
    return f"{count} package" if count == 1 else f"{count} packages"


def change_lines(changes: Iterable[Change]) -> list[str]:
    """One `` <sign> name==version`` line per change, in uv's order: by normalised name, a
    removal before the install that replaces it."""
    order = {"-": 0, "~": 1, "+": 2}
    rows = sorted(
        ((canonicalize_name(name), sign, version) for sign, name, version in changes),
        key=lambda row: (row[0], order.get(row[1], 3), row[2]),
    )
    return [f" {sign} {name}=={version}" for name, sign, version in rows]


class LiveLine:
    """A status line kept up to date on a terminal while a block runs.

    ``render`` is called from a background thread every ``interval`` seconds (and once at the
    start and once at the end, so the last state is drawn too), and the line redrawn when its
    text changed; whatever it reads must be safe to read from another thread. On a stream
    that is not a terminal, or when ``enabled`` is false, nothing is drawn and no thread
    starts. On leaving, the line is erased, so the next output starts on a clean line. A log
    message written to the same stream meanwhile first erases the line (redrawn after it).
    """

    def __init__(
        self,
        stream: TextIO,
        render: Callable[[], str],
        *,
        enabled: bool = True,
        interval: float = 0.1,
    ) -> None:
        self._stream = stream
        self._render = render
        self._interval = interval
        self._active = enabled and _is_terminal(stream)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._shown: str | None = None

    @property
    def active(self) -> bool:
        """Whether the line is drawn (a terminal, and enabled)."""
        return self._active

    def _draw(self) -> None:
        try:
            text = self._render()
        except Exception:  # noqa: BLE001 - a status line must never break the command
            return
        with self._lock:
            if text == self._shown:
                return  # a terminal over a slow link pays for every redraw
            self._shown = text
            self._stream.write(f"{_ERASE}{text}")
            self._stream.flush()

    def clear(self) -> None:
        """Erase the line (the next redraw draws it again)."""
        self.write("")

    def write(self, text: str) -> None:
        """Write ``text`` to the stream in the line's place (the next redraw draws the line
        again below it)."""
        with self._lock:
            if self._shown is not None:
                self._stream.write(_ERASE)
                self._shown = None
            self._stream.write(text)
            self._stream.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._draw()

    def __enter__(self) -> LiveLine:
        if self._active:
            for handler in logging.getLogger("fetchplan").handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream is self._stream:
                    handler.addFilter(self._erase_first)
            self._draw()
            self._thread = threading.Thread(target=self._loop, name="fetchplan-status", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._draw()
        for handler in logging.getLogger("fetchplan").handlers:
            handler.removeFilter(self._erase_first)
        with self._lock:
            self._stream.write(_ERASE)
            self._stream.flush()

    def _erase_first(self, record: logging.LogRecord) -> bool:
        """A handler filter: the record is about to be written to the line's stream."""
        self.clear()
        return True


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
