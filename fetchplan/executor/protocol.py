"""The HTTP rules of a resumable, verified download, as pure functions of headers.

Which validator may resume a partial (RFC 9110 §8.8: a strong ETag, or a Last-Modified that
is strong because the response's Date is at least a second later), what a ``206`` must say to
be appended to a partial, and where a redirect may lead.
"""

from __future__ import annotations

import email.utils
import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin, urlsplit

from fetchplan._urls import is_secure_or_trusted

__all__ = [
    "REDIRECT_STATUSES",
    "ContentRange",
    "RedirectRefused",
    "ResumeVerdict",
    "Validator",
    "check_partial_response",
    "content_encoding",
    "parse_content_range",
    "range_headers",
    "redirect_target",
    "strong_validator",
]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Validator:
    """A strong validator of the response a partial's bytes came from."""

    kind: Literal["etag", "last-modified"]
    value: str


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # requests' headers are case-insensitive already; plain dicts in tests may not be.
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, item in headers.items():
        if key.lower() == lowered:
            return item
    return None


def strong_validator(headers: Mapping[str, str]) -> Validator | None:
    """The validator a later ``If-Range`` may use, or None if the response has no strong one.

    A weak ETag (``W/"..."``) never qualifies. Last-Modified qualifies only when ``Date`` is
    at least one second after it (RFC 9110 §8.8.2.2).
    """
    etag = _header(headers, "ETag")
    if etag is not None:
        etag = etag.strip()
        if etag.startswith('"') and etag.endswith('"') and len(etag) >= 2:
            return Validator("etag", etag)
        if not etag.startswith("W/") and etag:
            # An unquoted tag is malformed but strong; servers do send them.
            return Validator("etag", etag)
    modified = _header(headers, "Last-Modified")
    date = _header(headers, "Date")
    if modified is None or date is None:
        return None
    try:
        modified_at = email.utils.parsedate_to_datetime(modified)
        date_at = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return None
    if (date_at - modified_at).total_seconds() >= 1:
        return Validator("last-modified", modified.strip())
    return None


def range_headers(offset: int, validator: Validator | None) -> dict[str, str]:
    """Request headers to continue a partial of ``offset`` bytes (none when starting anew):
    with ``If-Range`` when there is a validator, else a plain ``Range`` (the caller resumes
    without one only when the plan's sha256 will judge the spliced file)."""
    if offset <= 0:
        return {}
    if validator is None:
        return {"Range": f"bytes={offset}-"}
    return {"Range": f"bytes={offset}-", "If-Range": validator.value}


@dataclass(frozen=True, slots=True)
class ContentRange:
    start: int
    end: int
    total: int | None


def parse_content_range(value: str | None) -> ContentRange | None:
    """``bytes START-END/TOTAL`` (TOTAL may be ``*``), or None when absent or malformed."""
    if value is None:
        return None
    match = _CONTENT_RANGE.match(value)
    if match is None:
        return None
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return ContentRange(start, end, total)


class ResumeVerdict(enum.Enum):
    APPEND = "append"
    """A 206 that continues the partial exactly where it ends."""
    RESTART = "restart"
    """A 200: the whole file follows; the partial is dropped and writing starts at zero."""
    DISCARD = "discard"
    """A 206 that does not fit the partial: drop it and ask again from zero."""


def check_partial_response(
    status: int,
    headers: Mapping[str, str],
    offset: int,
    size: int | None,
    validator: Validator | None,
) -> tuple[ResumeVerdict, str]:
    """Judge the answer to a range request for bytes ``offset-`` of a file of ``size`` bytes.

    A 206 must carry a Content-Range that starts at ``offset``, runs to the end, and whose
    total equals ``size``; if the response names a validator it must be the one asked for
    (a server that ignores If-Range would otherwise splice two versions of a file).
    """
    if status == 200:
        return ResumeVerdict.RESTART, "server sent the whole file"
    content_range = parse_content_range(_header(headers, "Content-Range"))
    if content_range is None:
        return ResumeVerdict.DISCARD, "206 without a usable Content-Range"
    if content_range.start != offset:
        return (
            ResumeVerdict.DISCARD,
            f"206 starts at byte {content_range.start}, not at {offset}",
        )
    if size is not None and content_range.total != size:
        return (
            ResumeVerdict.DISCARD,
            f"206 says the file has {content_range.total} bytes, the plan says {size}",
        )
    if content_range.total is not None and content_range.end != content_range.total - 1:
        return ResumeVerdict.DISCARD, "206 does not run to the end of the file"
    answered = strong_validator(headers)
    if validator is not None and answered is not None and answered.kind == validator.kind:
        if answered.value != validator.value:
            return ResumeVerdict.DISCARD, "206 comes from another version of the file"
    elif validator is not None and validator.kind == "etag":
        etag = _header(headers, "ETag")
        if etag is not None and etag.strip() != validator.value:
            return ResumeVerdict.DISCARD, "206 comes from another version of the file"
    return ResumeVerdict.APPEND, "resuming"


def content_encoding(headers: Mapping[str, str]) -> str:
    """The response's content coding, lower-case; ``identity`` when there is none."""
    value = _header(headers, "Content-Encoding")
    if value is None or not value.strip():
        return "identity"
    return value.strip().lower()


class RedirectRefused(Exception):
    """A redirect the executor will not follow; ``str()`` says why."""


def redirect_target(current: str, location: str | None, trusted_hosts: Iterable[str] = ()) -> str:
    """The absolute URL a redirect from ``current`` leads to, if following it is allowed.

    Refused: a missing Location, a scheme other than http(s), https -> http, and plain http to
    a host that is neither loopback nor trusted.
    """
    if location is None or not location.strip():
        raise RedirectRefused("redirect without a Location header")
    target = urljoin(current, location.strip())
    scheme = urlsplit(target).scheme.lower()
    if scheme not in ("http", "https"):
        raise RedirectRefused(f"redirect to a {scheme or 'relative'} URL")
    if urlsplit(current).scheme.lower() == "https" and scheme == "http":
        raise RedirectRefused("redirect from https to http refused")
    if not is_secure_or_trusted(target, frozenset(h.lower() for h in trusted_hosts)):
        raise RedirectRefused("redirect to plain http on an untrusted host refused")
    return target
