"""Logging set-up for the CLI: console verbosity and the shared ``--log FILE``.

The library logs through ``logging.getLogger(__name__)`` and never prints. A filter on every
handler strips credentials from URLs, so no log line carries a password.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from fetchplan._urls import redact

__all__ = ["RedactingFilter", "configure_logging"]


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with credentials removed from any URL in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when the handler was
    made: a live display (rich's bars) swaps ``sys.stderr`` for a proxy that prints above the
    bars, and a handler holding the original stream would draw over them instead, leaving
    stale copies of the bars in the scrollback."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass  # StreamHandler.__init__ assigns one; the property always answers sys.stderr


def configure_logging(verbosity: int, log_file: Path | None) -> None:
    """Console at WARNING (-q: ERROR, -v: INFO, -vv: DEBUG); ``log_file`` at DEBUG.

    The file handler is concurrent-log-handler's, which locks the file so several processes
    (for example executor shards) can append to one log safely.
    """
    root = logging.getLogger("fetchplan")
    root.setLevel(logging.DEBUG)
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(
        verbosity, logging.DEBUG if verbosity > 1 else logging.ERROR
    )
    console = _StderrHandler()
    console.setLevel(level)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    console.addFilter(RedactingFilter())
    root.addHandler(console)
    if log_file is not None:
        from concurrent_log_handler import ConcurrentRotatingFileHandler

        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = ConcurrentRotatingFileHandler(
            str(log_file), mode="a", maxBytes=50 * 1024 * 1024, backupCount=3, encoding="utf-8"
        )
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(process)d %(threadName)s %(name)s %(levelname)s %(message)s"
            )
        )
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
