"""The page cache's HTTP rules (RFC 9111), as a table: no network, no clock."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from fetchplan.planner import httpcache

T0 = 1_800_000_000.0  # a fixed "now" for every row


def date(offset: float) -> str:
    return formatdate(T0 + offset, usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {}),
        ("", {}),
        ("max-age=600", {"max-age": "600"}),
        ("Max-Age=600, No-Cache", {"max-age": "600", "no-cache": None}),
        ('private, max-age="60"', {"private": None, "max-age": "60"}),
        ("max-age=60, max-age=5", {"max-age": "60"}),  # the first of a repeated directive
        (" , no-store ,", {"no-store": None}),
    ],
)
def test_cache_control_directives(value: str | None, expected: dict[str, str | None]) -> None:
    assert httpcache.parse_cache_control(value) == expected


@pytest.mark.parametrize(
    ("status", "response", "request_headers", "expected"),
    [
        (200, {"etag": '"a"'}, {}, True),
        (200, {"last-modified": date(-86400)}, {}, True),
        (200, {"cache-control": "max-age=600"}, {}, True),
        # Nothing to revalidate it by and no lifetime: nothing would ever reuse it.
        (200, {}, {}, False),
        (200, {"cache-control": "max-age=0"}, {}, False),
        (200, {"etag": '"a"', "cache-control": "no-store"}, {}, False),
        (200, {"etag": '"a"', "cache-control": "private, NO-STORE"}, {}, False),
        (200, {"etag": '"a"'}, {"Cache-Control": "no-store"}, False),
        (200, {"etag": '"a"', "cache-control": "no-cache"}, {}, True),
        (200, {"etag": '"a"', "vary": "Accept, *"}, {}, False),
        (200, {"etag": '"a"', "vary": "Accept"}, {}, True),
        (404, {"etag": '"a"'}, {}, False),
        (206, {"etag": '"a"'}, {}, False),
    ],
)
def test_what_is_stored(
    status: int, response: dict[str, str], request_headers: dict[str, str], expected: bool
) -> None:
    assert httpcache.storable(status, response, request_headers) is expected


@pytest.mark.parametrize(
    ("headers", "stored_at", "fresh"),
    [
        # max-age counts from when the response was generated: Age and Date add to it.
        ({"cache-control": "max-age=600"}, T0 - 599, True),
        ({"cache-control": "max-age=600"}, T0 - 601, False),
        ({"cache-control": "max-age=600", "age": "500"}, T0 - 99, True),
        ({"cache-control": "max-age=600", "age": "500"}, T0 - 101, False),
        ({"cache-control": "max-age=600", "date": date(-300)}, T0 - 10, True),  # apparent 290 s
        ({"cache-control": "max-age=600", "date": date(-700)}, T0 - 10, False),
        ({"cache-control": "max-age=600, no-cache"}, T0 - 1, False),
        ({"cache-control": "no-cache"}, T0, False),
        ({"cache-control": "max-age=abc"}, T0, False),
        ({"cache-control": "max-age=-5"}, T0, False),
        ({"cache-control": "s-maxage=600"}, T0, False),  # for shared caches only
        # Expires minus Date; max-age wins over Expires.
        ({"expires": date(600), "date": date(0)}, T0 - 10, True),
        ({"expires": date(600), "date": date(0)}, T0 - 700, False),
        ({"expires": date(600), "date": date(0), "cache-control": "max-age=5"}, T0 - 10, False),
        ({"expires": "0", "date": date(0)}, T0, False),  # an invalid Expires: already stale
        ({"expires": date(600)}, T0, False),  # no Date to measure it from
        # No heuristic freshness from Last-Modified: revalidate instead.
        ({"last-modified": date(-365 * 86400), "etag": '"a"'}, T0, False),
        ({}, T0, False),
        # A clock gone backwards: stale.
        ({"cache-control": "max-age=600"}, T0 + 10, False),
    ],
)
def test_freshness(headers: dict[str, str], stored_at: float, fresh: bool) -> None:
    assert httpcache.is_fresh(headers, stored_at, T0) is fresh


@pytest.mark.parametrize(
    ("headers", "conditions"),
    [
        ({"etag": '"abc"'}, {"If-None-Match": '"abc"'}),
        ({"last-modified": date(-5)}, {"If-Modified-Since": date(-5)}),
        (
            {"etag": 'W/"x"', "last-modified": date(-5)},
            {"If-None-Match": 'W/"x"', "If-Modified-Since": date(-5)},
        ),
        ({"cache-control": "max-age=60"}, {}),
    ],
)
def test_conditional_headers(headers: dict[str, str], conditions: dict[str, str]) -> None:
    assert httpcache.conditional_headers(headers) == conditions


@pytest.mark.parametrize(
    ("stored", "answer", "expected"),
    [
        # A 304 updates the stored fields it carries (RFC 9111 section 4.3.4).
        (
            {"etag": '"a"', "content-type": "text/html"},
            {"ETag": '"a"', "Cache-Control": "max-age=60", "Date": date(0)},
            {
                "etag": '"a"',
                "content-type": "text/html",
                "cache-control": "max-age=60",
                "date": date(0),
            },
        ),
        # Weak comparison: W/"a" validates "a".
        ({"etag": '"a"'}, {"ETag": 'W/"a"'}, {"etag": 'W/"a"'}),
        # A 304 naming another ETag validates some other response: not ours.
        ({"etag": '"a"'}, {"ETag": '"b"'}, None),
        # Without an ETag in the 304 (Last-Modified validation), the stored one stays.
        (
            {"last-modified": date(-9)},
            {"Date": date(0)},
            {"last-modified": date(-9), "date": date(0)},
        ),
        # The 304 describes the stored body: its Content-Type does not replace the stored one.
        (
            {"content-type": "application/json"},
            {"Content-Type": "text/plain"},
            {"content-type": "application/json"},
        ),
    ],
)
def test_revalidation(
    stored: dict[str, str], answer: dict[str, str], expected: dict[str, str] | None
) -> None:
    assert httpcache.revalidated(stored, answer) == expected


def test_kept_headers_are_the_caching_fields_lower_cased() -> None:
    kept = httpcache.kept_headers(
        {"ETag": '"a"', "Content-Type": "text/html", "Set-Cookie": "s=1", "X-Other": "1"}
    )
    assert kept == {"etag": '"a"', "content-type": "text/html"}
