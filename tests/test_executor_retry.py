"""The retry policy and stall meter are pure values: decisions need no network or clock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from fetchplan.executor.limits import StallMeter, TransferLimits
from fetchplan.executor.outcome import Fail, Restart, Retry
from fetchplan.executor.retry import RetryPolicy, Step, Tries, parse_retry_after

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_retryable_statuses() -> None:
    assert all(RetryPolicy.is_retryable_status(s) for s in (408, 429, 500, 502, 503, 504, 599))
    assert not any(RetryPolicy.is_retryable_status(s) for s in (400, 401, 403, 404, 410, 416))


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=10.0)
    assert [policy.backoff(n, 0.0) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1, 2, 4, 5, 5]
    assert [policy.backoff(n, 0.999999) for n in (1, 2, 3)] == pytest.approx([1, 2, 4])
    assert policy.backoff(1000, 0.5) == pytest.approx(7.5)


def test_retry_after_seconds_date_past_and_garbage() -> None:
    assert parse_retry_after("7", NOW) == 7
    later = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, NOW) == pytest.approx(30)
    earlier = format_datetime(NOW - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(earlier, NOW) == 0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_delay_honours_retry_after_up_to_the_cap() -> None:
    policy = RetryPolicy(backoff_base=0.1, backoff_max=1.0, retry_after_cap=20.0)
    assert policy.delay(1, 0.0, retry_after=5.0) == 5.0
    assert policy.delay(1, 0.0, retry_after=3600.0) == 20.0
    assert policy.delay(1, 0.0, retry_after=None) == pytest.approx(0.05)
    assert policy.delay(1, 0.0, retry_after=0.0) == pytest.approx(0.05)


def test_attempt_budget() -> None:
    policy = RetryPolicy(attempts=3, max_tries=10)
    assert policy.may_retry(2, 2)
    assert not policy.may_retry(3, 3)
    assert not policy.may_retry(0, 10)
    with pytest.raises(ValueError, match="at least one attempt"):
        RetryPolicy(attempts=0)


def test_sleep_is_cut_short_by_cancel() -> None:
    cancel = threading.Event()
    threading.Timer(0.05, cancel.set).start()
    started = time.monotonic()
    assert RetryPolicy().sleep(30, cancel) is False
    assert time.monotonic() - started < 5
    assert RetryPolicy().sleep(0.001, threading.Event()) is True


def test_environment_overrides() -> None:
    policy = RetryPolicy().with_env({"FETCHPLAN_RETRIES": "2", "FETCHPLAN_RETRY_BASE": "0.01"})
    assert (policy.attempts, policy.backoff_base) == (2, 0.01)
    limits = TransferLimits().with_env(
        {"FETCHPLAN_STALL_WINDOW": "0.5", "FETCHPLAN_STALL_MIN_BYTES": "10"}
    )
    assert (limits.stall_window, limits.stall_min_bytes) == (0.5, 10)
    with pytest.raises(ValueError, match="positive"):
        TransferLimits().with_env({"FETCHPLAN_FILE_DEADLINE": "0"})


def test_stall_meter_trips_on_a_drip_not_on_a_flow() -> None:
    meter = StallMeter(window=1.0, min_bytes=100, now=0.0)
    assert not meter.add(10, 0.5)
    assert meter.add(10, 1.0)  # 20 bytes in a second: stalled
    assert not meter.add(200, 1.5)
    assert not meter.add(0, 2.1)  # 200 bytes in the last window: fine
    assert meter.add(1, 3.2)


# -- the retry table: outcomes of one artifact's tries -> the policy's steps -------------------

RETRY_NO_PROGRESS = Retry("HTTP 503 Service Unavailable")
WRONG = Restart("sha256 mismatch", final=True)
CANNOT_CONTINUE = Restart("server cannot continue the partial (416)", final=False)
NOT_FOUND = Fail("HTTP 404 Not Found")


def _further(reached: int) -> Retry:
    return Retry("connection lost", progress=True, reached=reached)


def _steps(policy: RetryPolicy, tries: list[tuple[int, Retry | Restart | Fail]]) -> list[str]:
    """Run ``(offset the try started at, its outcome)`` through the policy: each step taken."""
    state = Tries()
    steps = []
    for offset, outcome in tries:
        state = state.started(offset)
        decision = policy.increment(state, outcome)
        state = decision.tries
        steps.append(decision.step.value)
    return steps


@pytest.mark.parametrize(
    ("tries", "steps"),
    [
        pytest.param([(0, NOT_FOUND)], ["give up"], id="a failure is final"),
        pytest.param(
            [(0, RETRY_NO_PROGRESS)] * 3, ["retry", "retry", "give up"], id="three fruitless"
        ),
        pytest.param(
            [(n * 10, _further(n * 10 + 10)) for n in range(6)],
            ["retry"] * 5 + ["give up"],
            id="every try goes further: only max_tries bounds them",
        ),
        pytest.param(
            [(0, _further(10))] * 4,
            ["retry", "retry", "retry", "give up"],
            id="cut at the same place from zero (no resume): progress only once",
        ),
        pytest.param(
            [(0, WRONG), (0, RETRY_NO_PROGRESS), (0, WRONG)],
            ["restart", "retry", "give up"],
            id="wrong content twice",
        ),
        pytest.param(
            [(5, CANNOT_CONTINUE)] * 6,
            ["restart"] * 5 + ["give up"],
            id="a restart that is not final is bounded by max_tries",
        ),
        pytest.param(
            [(0, _further(10)), (10, WRONG), (0, _further(10)), (10, _further(20))],
            ["retry", "restart", "retry", "retry"],
            id="a restart forgets how far the partial had come",
        ),
    ],
)
def test_retry_table(tries: list[tuple[int, Retry | Restart | Fail]], steps: list[str]) -> None:
    assert _steps(RetryPolicy(attempts=3, max_tries=6), tries) == steps


def test_giving_up_after_retries_says_how_many_tries_and_keeps_the_history() -> None:
    policy = RetryPolicy(attempts=2)
    state = Tries().started(0)
    first = policy.increment(state, RETRY_NO_PROGRESS)
    assert (first.step, first.reason) == (Step.RETRY, "HTTP 503 Service Unavailable")
    second = policy.increment(first.tries.started(0), RETRY_NO_PROGRESS)
    assert second.step is Step.GIVE_UP
    assert second.reason == "HTTP 503 Service Unavailable (gave up after 2 tries)"
    assert second.tries.history == (RETRY_NO_PROGRESS, RETRY_NO_PROGRESS)
    assert (second.tries.count, second.tries.failures) == (2, 2)
    assert state == Tries(count=1, reached=0)  # values: the tries before are left as they were


def test_the_wait_follows_the_failures_and_the_last_retry_after() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=10.0, retry_after_cap=60.0)
    state = Tries().started(0)
    once = policy.increment(state, RETRY_NO_PROGRESS).tries
    assert policy.wait(once, 0.0) == 0.5
    twice = policy.increment(once.started(0), RETRY_NO_PROGRESS).tries
    assert policy.wait(twice, 0.0) == 1.0
    told = policy.increment(twice.started(0), Retry("HTTP 429", retry_after=42.0)).tries
    assert policy.wait(told, 0.0) == 42.0
    progressed = policy.increment(Tries().started(0), _further(10)).tries
    assert progressed.failures == 0 and policy.wait(progressed, 0.0) == 0.5
