"""When a stored index page may be reused, and how to revalidate it: RFC 9111, as pure functions.

A stored response is its kept header fields (:data:`KEPT_HEADERS`, names lower-cased) and the
wall-clock time it was received. Everything here is a function of those, the new answer's
header fields, and the time now, so the rules test as a table without a network or a clock.

What the planner's private cache does (RFC 9111 for a private cache, as uv does):

* not stored: a response other than 200, ``Cache-Control: no-store`` (in the answer or the
  request), ``Vary: *``; nor one with neither a validator (``ETag``, ``Last-Modified``) nor an
  explicit freshness lifetime, as there would be nothing to reuse it by;
* fresh, so reused without a request: while its age (``Age``, ``Date`` and time since it was
  received) is below its freshness lifetime: ``max-age`` (``s-maxage`` is for shared caches),
  else ``Expires`` minus ``Date``; an unreadable ``Expires`` is already stale. ``no-cache``
  makes it stale every time. No heuristic freshness (RFC 9111 section 4.2.2 allows one, from
  ``Last-Modified``): a plan must see a release the moment the index lists it, and
  revalidating costs one round trip and no parsing. A clock gone backwards makes it stale;
* stale: revalidated with ``If-None-Match`` (the ``ETag``) and ``If-Modified-Since`` (the
  ``Last-Modified``); a 304 reuses it, its header fields updated from the 304's (section
  4.3.4), unless the 304 names another ``ETag`` (then it validates some other response, and
  the page is fetched again whole).

CacheControl (pip's) and hishel implement these rules inside an HTTP client's transport
(requests' adapter, httpx); the planner sends index pages on urllib3's pools directly and
pages requested early on ``http.client`` (:mod:`fetchplan.planner.http`), and keeps the parsed
page rather than the response, so neither fits; the rules themselves are these few functions.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping

__all__ = [
    "KEPT_HEADERS",
    "conditional_headers",
    "forbids_storing",
    "freshness_lifetime",
    "is_fresh",
    "kept_headers",
    "parse_cache_control",
    "revalidated",
    "storable",
]

KEPT_HEADERS = (
    "cache-control",
    "etag",
    "last-modified",
    "expires",
    "date",
    "age",
    "content-type",
    "vary",
)
"""The header fields a stored page keeps: its caching rules, and its ``Content-Type``."""


def parse_cache_control(value: str | None) -> dict[str, str | None]:
    """``Cache-Control`` directives by lower-cased name: a value (unquoted) or None.

    A directive given twice keeps its first value, as RFC 9111 section 4.2.1 advises for
    ``max-age``.
    """
    directives: dict[str, str | None] = {}
    if not value:
        return directives
    for item in value.split(","):
        name, sep, argument = item.strip().partition("=")
        name = name.strip().lower()
        if not name or name in directives:
            continue
        argument = argument.strip()
        if len(argument) >= 2 and argument[0] == argument[-1] == '"':
            argument = argument[1:-1]
        directives[name] = argument if sep else None
    return directives


def _seconds(value: str | None) -> int | None:
    """A delta-seconds value (RFC 9111 section 1.2.2), or None when it is not one."""
    if value is None or not value.isdigit():
        return None
    return int(value)


def _date(value: str | None) -> float | None:
    """An HTTP date as a POSIX timestamp, or None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # "-0000": a date in UTC whose zone is unknown
        return None
    return parsed.timestamp()


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The fields of ``headers`` (any case) a stored page keeps (:data:`KEPT_HEADERS`)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return {name: lowered[name] for name in KEPT_HEADERS if name in lowered}


def storable(
    status: int, response: Mapping[str, str], request: Mapping[str, str] | None = None
) -> bool:
    """Whether a response with ``status`` and kept header fields ``response`` (lower-cased
    names) to a request with header fields ``request`` is worth storing."""
    if status != 200 or forbids_storing(response, request):
        return False
    has_validator = "etag" in response or "last-modified" in response
    return has_validator or freshness_lifetime(response) > 0


def forbids_storing(response: Mapping[str, str], request: Mapping[str, str] | None = None) -> bool:
    """Whether nothing of a response with kept header fields ``response`` may be kept, its
    parsed form included: ``no-store`` (in the answer or the request), ``Vary: *``."""
    if "no-store" in parse_cache_control(response.get("cache-control")):
        return True
    requested = {name.lower(): value for name, value in (request or {}).items()}
    if "no-store" in parse_cache_control(requested.get("cache-control")):
        return True
    return any(part.strip() == "*" for part in response.get("vary", "").split(","))


def freshness_lifetime(headers: Mapping[str, str]) -> float:
    """Seconds a response with ``headers`` is fresh for, from when it was generated (0 when
    it has no explicit lifetime, or ``no-cache``)."""
    directives = parse_cache_control(headers.get("cache-control"))
    if "no-cache" in directives:
        return 0.0
    if "max-age" in directives:
        max_age = _seconds(directives["max-age"])
        return 0.0 if max_age is None else float(max_age)
    if "expires" in headers:
        expires = _date(headers["expires"])
        if expires is None:
            return 0.0
        date = _date(headers.get("date"))
        if date is None:
            return 0.0
        return max(0.0, expires - date)
    return 0.0


def _current_age(headers: Mapping[str, str], stored_at: float, now: float) -> float:
    """RFC 9111 section 4.2.3, with the request's own delay taken as nothing."""
    age = _seconds(headers.get("age")) or 0
    date = _date(headers.get("date"))
    apparent = max(0.0, stored_at - date) if date is not None else 0.0
    return max(apparent, float(age)) + (now - stored_at)


def is_fresh(headers: Mapping[str, str], stored_at: float, now: float) -> bool:
    """Whether a page with kept ``headers``, received at ``stored_at``, may be reused at
    ``now`` without asking the server (times are POSIX timestamps)."""
    if now < stored_at:
        return False
    return freshness_lifetime(headers) > _current_age(headers, stored_at, now)


def conditional_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The request header fields that revalidate a page with kept ``headers``."""
    conditions: dict[str, str] = {}
    if "etag" in headers:
        conditions["If-None-Match"] = headers["etag"]
    if "last-modified" in headers:
        conditions["If-Modified-Since"] = headers["last-modified"]
    return conditions


def revalidated(stored: Mapping[str, str], answer: Mapping[str, str]) -> dict[str, str] | None:
    """The kept header fields of a stored page after a 304 with header fields ``answer``
    (any case), or None when that 304 does not validate it (another ``ETag``)."""
    update = kept_headers(answer)
    update.pop("content-type", None)  # a 304 describes the stored body, it does not replace it
    etag = update.get("etag")
    if etag is not None and "etag" in stored and not _same_etag(etag, stored["etag"]):
        return None
    return {**stored, **update}


def _same_etag(one: str, other: str) -> bool:
    """The weak comparison of RFC 9110 section 8.8.3.2 (what ``If-None-Match`` uses)."""
    return one.strip().removeprefix("W/") == other.strip().removeprefix("W/")
