"""get_whole: index pages and metadata files on urllib3 directly, or through requests when needed.

The direct path must send what requests would (headers, credentials, through the same pool and
proxies) and fall back to requests wherever requests does more (redirects, cookies, proxies).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from requests.adapters import HTTPAdapter

from fetchplan.auth import CredentialStore
from fetchplan.errors import HashMismatch, NetworkError
from fetchplan.planner.http import (
    BodyTooLarge,
    HttpPolicy,
    RecordingSession,
    download_file,
    get_whole,
    make_session,
)
from fetchplan.planner.sources import USER_AGENT
from fetchplan.planner.timings import Timings
from tests.conftest import MakeIndexServer
from tests.support.servers import IndexServer, ServerOptions
from tests.support.wheels import Dist


def _no_requests_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self: requests.Session, *args: Any, **kwargs: Any) -> requests.Response:
        raise AssertionError("went through requests")

    monkeypatch.setattr(RecordingSession, "send", fail)


@pytest.fixture
def server(index_server: MakeIndexServer) -> IndexServer:
    return index_server([Dist("demo", "1.0", padding=4096)])


def test_a_page_comes_straight_from_urllib3_with_headers_credentials_and_timing(
    index_server: MakeIndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = index_server([Dist("demo", "1.0")], options=ServerOptions(auth=("me", "secret")))
    timings = Timings()
    store = CredentialStore([f"http://me:secret@127.0.0.1:{server.port}/simple/"])
    session = make_session(HttpPolicy(), store, timings=timings)
    _no_requests_path(monkeypatch)
    with session:
        page = get_whole(
            session, f"{server.index_url}demo/", headers={"Accept": "text/html"}, timeout=10
        )
    assert page.status_code == 200
    assert "demo-1.0-py3-none-any.whl" in page.text
    assert page.url == f"{server.index_url}demo/"
    (seen,) = server.requests("/simple/demo/")
    assert seen.headers["user-agent"] == USER_AGENT
    assert seen.headers["accept"] == "text/html"
    assert seen.headers["authorization"].startswith("Basic ")
    (recorded,) = timings.to_dict()["events"]
    assert recorded["status"] == 200
    assert recorded["bytes"] > 0


def test_a_redirect_is_followed_by_requests(server: IndexServer) -> None:
    session = make_session(HttpPolicy(), CredentialStore())
    with session:
        page = get_whole(session, f"{server.url}/simple/demo", headers={}, timeout=10)
    assert page.status_code == 200
    assert page.url == f"{server.index_url}demo/"
    assert [r.status for r in server.requests("/simple/demo")] == [301, 301, 200]


def test_with_cookies_the_request_goes_through_requests(
    server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = make_session(HttpPolicy(), CredentialStore())
    session.cookies.set("token", "t", domain="127.0.0.1")
    _no_requests_path(monkeypatch)
    with session, pytest.raises(AssertionError, match="went through requests"):
        get_whole(session, f"{server.index_url}demo/", headers={}, timeout=10)


def test_proxies_apply_per_origin(
    index_server: MakeIndexServer, server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = index_server([Dist("demo", "1.0")])
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    session = make_session(HttpPolicy(retries=0), CredentialStore())
    through_proxy = f"http://localhost:{server.port}/simple/demo/"
    with session:
        for url in (f"{server.index_url}demo/", through_proxy) * 2:
            assert get_whole(session, url, headers={}, timeout=10).status_code == 200
    assert [r.path for r in server.requests()] == ["/simple/demo/"] * 2
    assert [r.path for r in proxy.requests()] == [through_proxy] * 2


def test_a_body_past_the_limit_is_refused_and_its_connection_not_reused(
    server: IndexServer,
) -> None:
    url = server.file_url("demo-1.0-py3-none-any.whl")
    session = make_session(HttpPolicy(), CredentialStore())
    with session:
        with pytest.raises(BodyTooLarge, match="larger than 100 bytes"):
            get_whole(session, url, headers={}, timeout=10, limit=100)
        whole = get_whole(session, url, headers={}, timeout=10, limit=10**6)
    assert whole.status_code == 200
    assert whole.content == (server.root / "files" / "demo-1.0-py3-none-any.whl").read_bytes()


def test_a_refused_connection_is_requests_connection_error(server: IndexServer) -> None:
    url = f"{server.index_url}demo/"
    server.close()
    session = make_session(HttpPolicy(retries=0), CredentialStore())
    with session, pytest.raises(requests.ConnectionError):
        get_whole(session, url, headers={}, timeout=5)


def test_a_plain_session_gives_the_same_answer(server: IndexServer) -> None:
    url = f"{server.index_url}demo/"
    with make_session(HttpPolicy(), CredentialStore()) as fast, requests.Session() as plain:
        direct = get_whole(fast, url, headers={"Accept": "text/html"}, timeout=10)
        through = get_whole(plain, url, headers={"Accept": "text/html"}, timeout=10)
    assert (direct.status_code, direct.url, direct.content) == (
        through.status_code,
        through.url,
        through.content,
    )
    assert direct.headers["content-type"] == through.headers["content-type"]


def test_a_pool_the_manager_dropped_is_replaced(server: IndexServer) -> None:
    url = f"{server.index_url}demo/"
    session = make_session(HttpPolicy(), CredentialStore())
    with session:
        assert get_whole(session, url, headers={}, timeout=10).status_code == 200
        # make_session mounts an HTTPAdapter; get_adapter is typed as returning its base class.
        cast(HTTPAdapter, session.get_adapter(url)).poolmanager.clear()  # closes every pool it kept
        assert get_whole(session, url, headers={}, timeout=10).status_code == 200
        assert get_whole(session, url, headers={}, timeout=10).status_code == 200


# -- download_file: the planner's one whole-file download ---------------------------------------


def test_download_file_hashes_caps_and_keeps_nothing_that_failed(
    server: IndexServer, tmp_path: Path
) -> None:
    wheel = server.root / "files" / "demo-1.0-py3-none-any.whl"
    data = wheel.read_bytes()
    url = server.file_url(wheel.name)
    seen: list[int] = []
    with make_session(HttpPolicy(), CredentialStore()) as session:
        digest = hashlib.sha256(data).hexdigest()
        with download_file(
            session, url, tmp_path, sha256=digest, timeout=10, received=seen.append
        ) as (path, hashed):
            assert path.parent == tmp_path and path.read_bytes() == data
            assert (hashed.sha256, hashed.size, sum(seen)) == (digest, len(data), len(data))
        assert list(tmp_path.iterdir()) == []  # not renamed away: removed
        failing = [
            (BodyTooLarge, url, None, 100),
            (HashMismatch, url, "0" * 64, 10**6),
            (NetworkError, server.file_url("missing.whl"), None, 10**6),
        ]
        for error, where, expected, limit in failing:
            with (
                pytest.raises(error, match=re.escape(where.split("/")[-1])),
                download_file(session, where, tmp_path, sha256=expected, timeout=10, limit=limit),
            ):
                pass
    assert list(tmp_path.iterdir()) == []
