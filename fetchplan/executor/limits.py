"""Timeouts of one transfer, and the meter that notices a stalled one.

A server that sends nothing trips the socket read timeout (the stall window); a server that
drips a byte now and then trips :class:`StallMeter`; a server that is merely very slow trips
the per-attempt deadline. All three end the try, and the retry policy decides what next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from fetchplan._limits import MAX_UNSIZED_BYTES

__all__ = ["MAX_UNSIZED_BYTES", "StallMeter", "TransferLimits"]


@dataclass(frozen=True, kw_only=True, slots=True)
class TransferLimits:
    """Connect timeout, stall detection and the deadline of one try, in seconds."""

    connect_timeout: float = 15.0
    stall_window: float = 30.0
    """Length of the window over which a transfer must make ``stall_min_bytes`` of progress."""
    stall_min_bytes: int = 16 * 1024
    deadline: float = 6 * 3600.0
    """Longest a single try of one file may take, however steadily bytes arrive."""
    checkpoint_bytes: int = 4 * 1024 * 1024
    """Record progress in the checkpoint after this many bytes (or ``checkpoint_seconds``)."""
    checkpoint_seconds: float = 2.0
    max_unsized_bytes: int = MAX_UNSIZED_BYTES
    """Most bytes a file whose plan has no size may bring (decoded, if it came encoded)."""

    def __post_init__(self) -> None:
        if min(self.connect_timeout, self.stall_window, self.deadline) <= 0:
            raise ValueError("timeouts must be positive")

    def with_env(self, env: Mapping[str, str]) -> TransferLimits:
        """These limits with ``FETCHPLAN_CONNECT_TIMEOUT``, ``FETCHPLAN_STALL_WINDOW``,
        ``FETCHPLAN_STALL_MIN_BYTES``, ``FETCHPLAN_FILE_DEADLINE``, ``FETCHPLAN_MAX_UNSIZED_BYTES``
        (and the checkpoint intervals) applied when set."""
        changes: dict[str, float | int] = {}
        for key, name in (
            ("FETCHPLAN_CONNECT_TIMEOUT", "connect_timeout"),
            ("FETCHPLAN_STALL_WINDOW", "stall_window"),
            ("FETCHPLAN_FILE_DEADLINE", "deadline"),
            ("FETCHPLAN_CHECKPOINT_SECONDS", "checkpoint_seconds"),
        ):
            if key in env:
                changes[name] = float(env[key])
        for key, name in (
            ("FETCHPLAN_STALL_MIN_BYTES", "stall_min_bytes"),
            ("FETCHPLAN_CHECKPOINT_BYTES", "checkpoint_bytes"),
            ("FETCHPLAN_MAX_UNSIZED_BYTES", "max_unsized_bytes"),
        ):
            if key in env:
                changes[name] = int(env[key])
        return replace(self, **changes)  # type: ignore[arg-type]


class StallMeter:
    """Tumbling windows of ``window`` seconds; stalled when one brought too few bytes.

    Fed with a monotonic clock by the caller, so it is deterministic under test.
    """

    def __init__(self, window: float, min_bytes: int, now: float) -> None:
        self._window = window
        self._min_bytes = min_bytes
        self._start = now
        self._bytes = 0

    def add(self, nbytes: int, now: float) -> bool:
        """Count ``nbytes`` arriving at ``now``; True when the window just closed stalled."""
        self._bytes += nbytes
        if now - self._start < self._window:
            return False
        stalled = self._bytes < self._min_bytes
        self._start = now
        self._bytes = 0
        return stalled
