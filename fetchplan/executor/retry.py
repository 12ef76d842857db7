"""When to try a download again, and how long to wait first.

:class:`RetryPolicy` is an immutable value; every decision is a pure method of it (the caller
supplies the random number and the clock), and :meth:`RetryPolicy.sleep` is the one place
that waits. Retried: connection errors, stalls and deadlines (the caller's judgement), HTTP
5xx, 408 and 429. Never retried: other 4xx and TLS errors.

As urllib3's ``Retry.increment`` returns a new ``Retry`` with its history, one artifact's
tries are a :class:`Tries` value: :meth:`RetryPolicy.increment` takes it and a try's
:mod:`outcome <fetchplan.executor.outcome>` and returns the :class:`Decision` (retry after a
wait, restart from zero, give up) with the tries that follow.
"""

from __future__ import annotations

import email.utils
import enum
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from fetchplan._limits import RETRY_AFTER_CAP
from fetchplan.executor.outcome import Fail, Restart, Retry

__all__ = ["Decision", "RetryPolicy", "Step", "Tries", "parse_retry_after"]


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
class Tries:
    """One artifact's tries so far, as the policy counts them."""

    count: int = 0
    """Tries started, whatever came of them."""
    failures: int = 0
    """Tries that were retried without taking the partial further."""
    fresh_starts: int = 0
    """Restarts that used up the one fresh start (the content was wrong)."""
    reached: int = -1
    """The longest the partial has been since it last started from zero: a retried try
    counts as progress only when it goes further, so tries that each start from zero (no
    resume) and are cut off use up the attempts."""
    history: tuple[Retry | Restart | Fail, ...] = ()
    """Every outcome but the last ``Received``, in order."""

    def started(self, offset: int) -> Tries:
        """These tries and one more, starting with the partial ``offset`` bytes long."""
        return replace(self, count=self.count + 1, reached=max(self.reached, offset))


class Step(enum.Enum):
    """What to do after a try that brought no body."""

    RETRY = "retry"
    """Wait (:meth:`RetryPolicy.wait`), then try again, resuming the partial."""
    RESTART = "restart"
    """Drop the partial and try again at once, from zero."""
    GIVE_UP = "give up"
    """The artifact fails, with the decision's reason."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer to an outcome: the next step, why, and the tries that follow."""

    step: Step
    reason: str
    tries: Tries


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

    def increment(self, tries: Tries, outcome: Retry | Restart | Fail) -> Decision:
        """The next step after ``outcome`` ended the last of ``tries``.

        A :class:`Fail` gives up. A :class:`Restart` starts again from zero, unless it is the
        second that found the content wrong (``final``), or, for one that did not, the tries
        are used up. A :class:`Retry` that took the partial further than any try before it
        costs nothing; else it is one of ``attempts`` fruitless tries; either way ``max_tries``
        bounds them.
        """
        history = (*tries.history, outcome)
        if isinstance(outcome, Fail):
            return Decision(Step.GIVE_UP, outcome.reason, replace(tries, history=history))
        if isinstance(outcome, Restart):
            after = replace(
                tries,
                reached=-1,
                fresh_starts=tries.fresh_starts + (1 if outcome.final else 0),
                history=history,
            )
            spent = after.fresh_starts > 1 if outcome.final else tries.count >= self.max_tries
            return Decision(Step.GIVE_UP if spent else Step.RESTART, outcome.reason, after)
        progressed = outcome.progress and outcome.reached > tries.reached
        after = replace(
            tries,
            failures=tries.failures + (0 if progressed else 1),
            reached=outcome.reached if progressed else tries.reached,
            history=history,
        )
        if not self.may_retry(after.failures, after.count):
            reason = f"{outcome.reason} (gave up after {after.count} tries)"
            return Decision(Step.GIVE_UP, reason, after)
        return Decision(Step.RETRY, outcome.reason, after)

    def wait(self, tries: Tries, rand: float) -> float:
        """How long to wait before retrying after the last of ``tries`` (see :meth:`delay`)."""
        last = tries.history[-1] if tries.history else None
        retry_after = last.retry_after if isinstance(last, Retry) else None
        return self.delay(max(tries.failures, 1), rand, retry_after)

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
