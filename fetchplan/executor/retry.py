"""When to try a download again, and how long to wait first.

:class:`RetryPolicy` is an immutable value; every decision is a pure method of it (the caller
supplies the random number and the clock), and :meth:`RetryPolicy.sleep` is the one place
that waits. Retried: connection errors, stalls and deadlines (the caller's judgement), HTTP
5xx, 408 and 429. Never retried: other 4xx and TLS errors.
"""

from __future__ import annotations

import email.utils
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from fetchplan._limits import RETRY_AFTER_CAP

__all__ = ["RetryPolicy", "parse_retry_after"]


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None.

    A date in the past means zero; anything unparseable means None (use the backoff).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How often and how patiently one artifact is retried.

    ``attempts`` counts tries that made no progress; a try that added bytes to a resumable
    partial does not use one up (a link that drops every few megabytes still finishes), but
    ``max_tries`` bounds every artifact's tries whatever happens.
    """

    attempts: int = 5
    max_tries: int = 50
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_cap: float = RETRY_AFTER_CAP

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.max_tries < 1:
            raise ValueError("a retry policy needs at least one attempt")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.retry_after_cap < 0:
            raise ValueError("retry delays cannot be negative")

    @staticmethod
    def is_retryable_status(status: int) -> bool:
        """5xx, 408 (request timeout) and 429 (too many requests) are worth another try."""
        return 500 <= status <= 599 or status in (408, 429)

    def may_retry(self, failures: int, tries: int) -> bool:
        """Whether another try is allowed after ``failures`` fruitless tries of ``tries``."""
        return failures < self.attempts and tries < self.max_tries

    def backoff(self, failures: int, rand: float) -> float:
        """Exponential backoff with jitter: half fixed, half random (``rand`` in [0, 1))."""
        exponent = min(max(failures - 1, 0), 30)
        ceiling = min(self.backoff_max, self.backoff_base * math.pow(2, exponent))
        return ceiling / 2 + ceiling / 2 * rand

    def delay(self, failures: int, rand: float, retry_after: float | None = None) -> float:
        """The wait before the next try: the backoff, or the server's Retry-After if longer,
        never more than ``retry_after_cap``."""
        wait = self.backoff(failures, rand)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, max(self.retry_after_cap, self.backoff_max))

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        """Wait ``seconds``; return False at once if ``cancel`` is set meanwhile."""
        if cancel is None:
            threading.Event().wait(seconds)
            return True
        return not cancel.wait(seconds)

    def with_env(self, env: Mapping[str, str]) -> RetryPolicy:
        """This policy with ``FETCHPLAN_RETRIES``, ``FETCHPLAN_RETRY_BASE``,
        ``FETCHPLAN_RETRY_MAX`` and ``FETCHPLAN_RETRY_AFTER_CAP`` applied when set."""
        changes: dict[str, float | int] = {}
        if "FETCHPLAN_RETRIES" in env:
            changes["attempts"] = int(env["FETCHPLAN_RETRIES"])
        for key, name in (
            ("FETCHPLAN_RETRY_BASE", "backoff_base"),
            ("FETCHPLAN_RETRY_MAX", "backoff_max"),
            ("FETCHPLAN_RETRY_AFTER_CAP", "retry_after_cap"),
        ):
            if key in env:
                changes[name] = float(env[key])
        return replace(self, **changes)  # type: ignore[arg-type]
