"""Release ages: durations such as ``7 days`` and cut-off times, for policy ``min_age`` and
``plan --exclude-newer``.

A leaf module (standard library only): the planner, the review package and the executor's
policy checks all read these spellings alike, and none of them imports another for it.

:func:`parse_duration` reads the friendly spelling uv uses (``7 days``, ``36 hours``,
``2 weeks``, ``90min``) and ISO 8601 durations (``P7D``, ``PT36H``, ``P1W``);
:func:`parse_cutoff` reads what ``--exclude-newer`` takes: an RFC 3339 time, a date (its
midnight UTC), or a duration meaning "that long before ``now``". Pure.
"""

from __future__ import annotations

import datetime as _dt
import re

__all__ = ["format_duration", "format_time", "parse_cutoff", "parse_duration", "parse_time"]

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
    "w": 7 * 86400,
    "week": 7 * 86400,
}
_FRIENDLY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*$")
_ISO = re.compile(
    r"^P(?:(?P<w>[0-9]+)W)?(?:(?P<d>[0-9]+)D)?"
    r"(?:T(?:(?P<h>[0-9]+)H)?(?:(?P<m>[0-9]+)M)?(?:(?P<s>[0-9]+)S)?)?$"
)


def parse_duration(text: str) -> _dt.timedelta:
    """``7 days``, ``36h``, ``2 weeks``, ``P7D``... as a timedelta; ValueError otherwise."""
    friendly = _FRIENDLY.match(text)
    if friendly is not None:
        unit = friendly.group(2).lower()
        unit = unit[:-1] if unit.endswith("s") and unit[:-1] in _UNITS else unit
        if unit in _UNITS:
            return _dt.timedelta(seconds=float(friendly.group(1)) * _UNITS[unit])
    iso = _ISO.match(text.strip().upper())
    if (
        iso is not None
        and text.strip().upper() not in {"P", "PT"}
        and any(iso.groupdict().values())
    ):
        parts = {k: int(v) for k, v in iso.groupdict().items() if v}
        return _dt.timedelta(
            weeks=parts.get("w", 0),
            days=parts.get("d", 0),
            hours=parts.get("h", 0),
            minutes=parts.get("m", 0),
            seconds=parts.get("s", 0),
        )
    raise ValueError(
        f"not a duration: {text!r} (use e.g. '7 days', '36 hours', '2 weeks' or 'P7D')"
    )


def parse_time(text: str) -> _dt.datetime:
    """An RFC 3339 time (a time without zone is UTC) or a date (its midnight UTC)."""
    try:
        parsed = _dt.datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (use e.g. 2026-01-31T12:00:00Z or 2026-01-31)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=_dt.UTC)


def parse_cutoff(text: str, now: _dt.datetime) -> _dt.datetime:
    """What ``--exclude-newer TEXT`` excludes files after: a time, or ``now`` less a duration."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        return parse_time(text)
    except ValueError:
        raise ValueError(
            f"neither a time nor a duration: {text!r} (use e.g. 2026-01-31T12:00:00Z, "
            "2026-01-31 or '7 days')"
        ) from None


def format_time(value: _dt.datetime) -> str:
    """A time as RFC 3339 in UTC with a ``Z``: ``2026-01-01T00:00:00Z``."""
    text = value.astimezone(_dt.UTC).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def format_duration(value: _dt.timedelta) -> str:
    """A duration for people: ``3 days 4 hours``, ``25 minutes``, ``0 seconds``."""
    seconds = int(value.total_seconds())
    parts = []
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}{'s' if count != 1 else ''}")
    if seconds or not parts:
        parts.append(f"{seconds} second{'s' if seconds != 1 else ''}")
    return " ".join(parts[:2])
