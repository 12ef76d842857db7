"""The retry policy and stall meter are pure values: decisions need no network or clock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from fetchplan.executor.limits import StallMeter, TransferLimits
from fetchplan.executor.retry import RetryPolicy, parse_retry_after

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
