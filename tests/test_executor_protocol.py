"""The HTTP rules of resuming and redirecting, as pure functions of headers."""

from __future__ import annotations

import pytest

from fetchplan.executor.protocol import (
    ContentRange,
    RedirectRefused,
    ResumeVerdict,
    Validator,
    check_partial_response,
    content_encoding,
    parse_content_range,
    range_headers,
    redirect_target,
    strong_validator,
)

ETAG = Validator("etag", '"v1"')
LM = "Mon, 05 Jan 2026 10:00:00 GMT"


def test_strong_etag_is_used_weak_never() -> None:
    assert strong_validator({"ETag": '"abc"'}) == Validator("etag", '"abc"')
    assert strong_validator({"etag": 'W/"abc"'}) is None
    assert strong_validator({"ETag": 'W/"abc"', "Last-Modified": LM, "Date": LM}) is None


def test_last_modified_is_strong_only_a_second_before_date() -> None:
    later = "Mon, 05 Jan 2026 10:00:01 GMT"
    assert strong_validator({"Last-Modified": LM, "Date": later}) == Validator("last-modified", LM)
    assert strong_validator({"Last-Modified": LM, "Date": LM}) is None
    assert strong_validator({"Last-Modified": LM}) is None
    assert strong_validator({"Last-Modified": "garbage", "Date": later}) is None


def test_range_headers_if_range_only_with_a_validator() -> None:
    assert range_headers(100, ETAG) == {"Range": "bytes=100-", "If-Range": '"v1"'}
    assert range_headers(100, None) == {"Range": "bytes=100-"}
    assert range_headers(0, ETAG) == {}


def test_content_range_parsing() -> None:
    assert parse_content_range("bytes 10-99/100") == ContentRange(10, 99, 100)
    assert parse_content_range("bytes 10-99/*") == ContentRange(10, 99, None)
    assert parse_content_range("bytes 99-10/100") is None
    assert parse_content_range("items 1-2/3") is None
    assert parse_content_range(None) is None


@pytest.mark.parametrize(
    ("status", "headers", "verdict"),
    [
        (206, {"Content-Range": "bytes 40-99/100", "ETag": '"v1"'}, ResumeVerdict.APPEND),
        (206, {"Content-Range": "bytes 40-99/100"}, ResumeVerdict.APPEND),
        (200, {"ETag": '"v2"'}, ResumeVerdict.RESTART),
        (206, {"Content-Range": "bytes 0-99/100"}, ResumeVerdict.DISCARD),
        (206, {"Content-Range": "bytes 40-99/101"}, ResumeVerdict.DISCARD),
        (206, {"Content-Range": "bytes 40-59/100"}, ResumeVerdict.DISCARD),
        (206, {}, ResumeVerdict.DISCARD),
        (206, {"Content-Range": "bytes 40-99/100", "ETag": '"v2"'}, ResumeVerdict.DISCARD),
    ],
)
def test_partial_response_judgement(
    status: int, headers: dict[str, str], verdict: ResumeVerdict
) -> None:
    assert check_partial_response(status, headers, 40, 100, ETAG)[0] is verdict


def test_partial_response_from_another_last_modified() -> None:
    validator = Validator("last-modified", LM)
    headers = {
        "Content-Range": "bytes 40-99/100",
        "Last-Modified": "Tue, 06 Jan 2026 10:00:00 GMT",
        "Date": "Wed, 07 Jan 2026 10:00:00 GMT",
    }
    assert check_partial_response(206, headers, 40, 100, validator)[0] is ResumeVerdict.DISCARD


def test_content_encoding() -> None:
    assert content_encoding({}) == "identity"
    assert content_encoding({"Content-Encoding": " GZIP "}) == "gzip"


def test_redirects() -> None:
    assert redirect_target("https://a.invalid/x/y", "/z") == "https://a.invalid/z"
    assert redirect_target("http://127.0.0.1:1/x", "http://127.0.0.1:2/y") == (
        "http://127.0.0.1:2/y"
    )
    assert redirect_target("https://a.invalid/x", "https://b.invalid/y") == "https://b.invalid/y"
    with pytest.raises(RedirectRefused, match="https to http"):
        redirect_target("https://a.invalid/x", "http://a.invalid/x")
    with pytest.raises(RedirectRefused, match="untrusted"):
        redirect_target("http://127.0.0.1/x", "http://b.invalid/x")
    assert redirect_target("http://127.0.0.1/x", "http://b.invalid/x", ["b.invalid"])
    with pytest.raises(RedirectRefused, match="file"):
        redirect_target("http://127.0.0.1/x", "file:///etc/passwd")
    with pytest.raises(RedirectRefused, match="Location"):
        redirect_target("http://127.0.0.1/x", None)
