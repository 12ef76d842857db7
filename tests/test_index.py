"""Index pages: the pure HTML/JSON parsers, and the client against a real loopback server."""

from __future__ import annotations

import json
import marshal
import re
from pathlib import Path

import pytest
import requests
from packaging.utils import canonicalize_name
from packaging.version import Version

from fetchplan.auth import CredentialStore
from fetchplan.planner.http import HttpPolicy, make_session
from fetchplan.planner.index import (
    CompactPage,
    CompactPageCodec,
    CompactPageError,
    IndexClient,
    IndexPageError,
    IndexUnavailable,
    ProjectPage,
    compact_html_page,
    compact_json_page,
    links_from_directory,
    parse_html_page,
    parse_json_page,
    source_for,
)
from fetchplan.planner.sources import JSON_TYPE
from fetchplan.planner.timings import Timings
from tests.conftest import MakeIndexServer
from tests.support.index import IndexOptions, write_index
from tests.support.servers import IndexRequestHandler
from tests.support.wheels import Dist, build_sdist, build_wheel

SHA = "a" * 64
PAGE = "https://idx.example.test/simple/demo/"
INDEX = "https://idx.example.test/simple/"
DEMO = canonicalize_name("demo")


def test_html_relative_links_fragments_and_attributes() -> None:
    html = f"""<!DOCTYPE html><html><head>
    <meta name="pypi:repository-version" content="1.1"></head><body>
    <a href="../../files/demo-1.0-py3-none-any.whl#sha256={SHA.upper()}"
       data-requires-python="&gt;=3.8" data-core-metadata="sha256={SHA}">demo</a>
    <a href="https://files.example.test/demo-1.1.tar.gz#md5=abc" data-yanked="">x</a>
    <a href="/files/demo-2.0-py3-none-any.whl" data-yanked="bad &amp; broken"
       data-dist-info-metadata="true">y</a>
    <a href="demo-readme.txt">not a distribution</a>
    <a href="../../files/other-1.0-py3-none-any.whl">other project</a>
    <a href="../../files/..%2F..%2Fevil-1.0-py3-none-any.whl">traversal</a>
    </body></html>"""
    links = parse_html_page(html, PAGE, INDEX, DEMO)
    assert [link.filename for link in links] == [
        "demo-1.0-py3-none-any.whl",
        "demo-1.1.tar.gz",
        "demo-2.0-py3-none-any.whl",
    ]
    wheel, sdist, yanked = links
    assert wheel.url == "https://idx.example.test/files/demo-1.0-py3-none-any.whl"
    assert wheel.hashes == {"sha256": SHA}
    assert wheel.requires_python == ">=3.8"
    assert wheel.metadata_url == wheel.url + ".metadata"
    assert wheel.metadata_sha256 == SHA
    assert not wheel.yanked
    assert wheel.index == INDEX
    # md5 is not strong enough to pin a file by: treated as no hash at all.
    assert sdist.hashes == {}
    assert sdist.kind == "sdist"
    assert sdist.yanked and sdist.yanked_reason is None
    assert yanked.url == "https://idx.example.test/files/demo-2.0-py3-none-any.whl"
    assert yanked.yanked_reason == "bad & broken"
    # PEP 714: the old attribute name still counts; "true" means no hash given.
    assert yanked.metadata_url == yanked.url + ".metadata"
    assert yanked.metadata_sha256 is None


def test_html_base_href_and_credentials_stripped() -> None:
    html = (
        '<html><head><base href="https://mirror.example.test/pkgs/"></head><body>'
        '<a href="demo-1.0-py3-none-any.whl">a</a>'
        '<a href="https://user:secret@files.example.test/demo-1.1-py3-none-any.whl">b</a>'
        "</body></html>"
    )
    links = parse_html_page(html, PAGE, INDEX, DEMO)
    assert [link.url for link in links] == [
        "https://mirror.example.test/pkgs/demo-1.0-py3-none-any.whl",
        "https://files.example.test/demo-1.1-py3-none-any.whl",
    ]


def test_html_unsupported_api_version_names_the_page() -> None:
    html = '<html><head><meta name="pypi:repository-version" content="2.0"></head></html>'
    with pytest.raises(IndexPageError, match=r"malformed index page https://idx.*/demo/.*2\.0"):
        parse_html_page(html, PAGE, INDEX, DEMO)


def test_json_page_fields() -> None:
    document = {
        "meta": {"api-version": "1.1"},
        "name": "demo",
        "files": [
            {
                "filename": "demo-1.0-py3-none-any.whl",
                "url": "../../files/demo-1.0-py3-none-any.whl",
                "hashes": {"sha256": SHA, "md5": "0" * 32},
                "requires-python": ">=3.9",
                "size": 1234,
                "upload-time": "2024-01-01T00:00:00Z",
                "core-metadata": {"sha256": SHA},
                "yanked": False,
            },
            {
                "filename": "demo-0.9.tar.gz",
                "url": "https://files.example.test/demo-0.9.tar.gz",
                "hashes": {},
                "yanked": "security issue",
                "dist-info-metadata": True,
            },
            {"filename": "demo-0.1.exe", "url": "x.exe", "hashes": {}},
        ],
    }
    links = parse_json_page(json.dumps(document), PAGE, INDEX, DEMO)
    assert len(links) == 2
    wheel, sdist = links
    assert wheel.url == "https://idx.example.test/files/demo-1.0-py3-none-any.whl"
    assert wheel.hashes == {"sha256": SHA}
    assert wheel.size == 1234
    assert wheel.upload_time == "2024-01-01T00:00:00Z"
    assert wheel.metadata_sha256 == SHA
    assert sdist.yanked and sdist.yanked_reason == "security issue"
    assert sdist.metadata_url == sdist.url + ".metadata" and sdist.metadata_sha256 is None
    assert sdist.size is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "top level is not an object"),
        ('{"files": []}', "missing 'meta'"),
        ('{"meta": {"api-version": "2.0"}, "files": []}', "unsupported repository API"),
        ('{"meta": {"api-version": "1.0"}}', "missing 'files'"),
        ('{"meta": {"api-version": "1.0"}, "files": [{"url": "x"}]}', "files[0]"),
        (
            '{"meta": {"api-version": "1.0"}, "files": [{"filename": "a-1.tar.gz", "url": "a",'
            ' "hashes": {}, "size": -1}]}',
            "files[0].size",
        ),
    ],
)
def test_json_malformed_names_url_and_field(text: str, problem: str) -> None:
    with pytest.raises(IndexPageError) as caught:
        parse_json_page(text, PAGE, INDEX, DEMO)
    assert PAGE in str(caught.value)
    assert problem in str(caught.value)


def test_json_hostile_filenames_are_skipped() -> None:
    document = {
        "meta": {"api-version": "1.0"},
        "files": [
            {"filename": "../demo-1.0-py3-none-any.whl", "url": "a", "hashes": {}},
            {"filename": ".demo-1.0-py3-none-any.whl", "url": "b", "hashes": {}},
            {"filename": "demo-1.0-py3-none-any.whl", "url": "c", "hashes": {}},
        ],
    }
    links = parse_json_page(json.dumps(document), PAGE, INDEX, DEMO)
    assert [link.url for link in links] == ["https://idx.example.test/simple/demo/c"]


def test_find_links_directory_and_source_normalisation(tmp_path: Path) -> None:
    build_wheel(tmp_path, Dist("demo", "1.0"))
    build_sdist(tmp_path, Dist("demo", "1.0"))
    (tmp_path / "notes.txt").write_text("x")
    source = source_for(str(tmp_path), "find-links")
    assert source.url.startswith("file:///") and source.kind == "find-links"
    links = links_from_directory(tmp_path, source.url)
    assert sorted(link.filename for link in links) == [
        "demo-1.0-py3-none-any.whl",
        "demo-1.0.tar.gz",
    ]
    assert all(link.size is not None and link.size > 0 for link in links)
    assert source_for("https://u:p@idx.example.test/simple", "index").url == INDEX


@pytest.fixture
def root(tmp_path: Path) -> Path:
    dists = [build_wheel(tmp_path / "d", Dist("demo", v)) for v in ("1.0", "1.1")]
    write_index(tmp_path / "idx", dists)
    return tmp_path / "idx"


def _client(timings: Timings | None = None, retries: int = 1) -> IndexClient:
    session = make_session(
        HttpPolicy(retries=retries, backoff=0.0, timeout=5.0), CredentialStore(), timings=timings
    )
    return IndexClient(session, timeout=5.0, timings=timings)


def test_client_prefers_json_and_falls_back_to_html(
    index_server: MakeIndexServer, root: Path
) -> None:
    server = index_server(root)
    client = _client()
    source = source_for(server.index_url, "index")
    page = client.project_page(source, DEMO)
    assert page is not None
    assert [link.filename for link in page.links] == [
        "demo-1.0-py3-none-any.whl",
        "demo-1.1-py3-none-any.whl",
    ]
    assert all(link.size is not None for link in page.links)  # PEP 700: came from JSON
    assert server.requests("/simple/demo/")[-1].status == 200
    server.options.formats = "html"
    page = client.project_page(source, DEMO)
    assert page is not None and len(page.links) == 2
    assert all(link.size is None for link in page.links)  # HTML has no sizes
    assert all(link.sha256 is not None for link in page.links)
    server.options.formats = "json"
    page = client.project_page(source, DEMO)
    assert page is not None and len(page.links) == 2
    assert client.project_page(source, canonicalize_name("absent")) is None


def test_client_file_index(root: Path) -> None:
    page = _client().project_page(source_for((root / "simple").as_uri(), "index"), DEMO)
    assert page is not None and len(page.links) == 2
    assert page.links[0].url == (root / "files" / "demo-1.0-py3-none-any.whl").as_uri()


def test_client_retries_then_names_the_index(index_server: MakeIndexServer, root: Path) -> None:
    server = index_server(root)

    def failing(handler: IndexRequestHandler) -> bool:
        handler.respond(503, b"down\n")
        return True

    server.set_handler_hook(failing)
    with pytest.raises(IndexUnavailable, match=r"index http://127\.0\.0\.1:\d+/simple/demo/ .*503"):
        _client(retries=2).project_page(source_for(server.index_url, "index"), DEMO)
    assert len(server.requests("/simple/demo/")) == 3  # the first try and two retries


def test_client_connection_refused_is_one_line() -> None:
    with pytest.raises(IndexUnavailable) as caught:
        _client(retries=0).project_page(source_for("http://127.0.0.1:9/simple/", "index"), DEMO)
    assert "\n" not in str(caught.value)
    assert "127.0.0.1:9/simple/demo/" in str(caught.value)


def test_client_malformed_page_names_url(index_server: MakeIndexServer, root: Path) -> None:
    server = index_server(root)

    def garbage(handler: IndexRequestHandler) -> bool:
        handler.respond(200, b"{nope", content_type="application/vnd.pypi.simple.v1+json")
        return True

    server.set_handler_hook(garbage)
    with pytest.raises(IndexPageError, match=r"malformed index page http://127.*/simple/demo/"):
        _client().project_page(source_for(server.index_url, "index"), DEMO)

    def binary(handler: IndexRequestHandler) -> bool:
        handler.respond(200, b"\x00\x01", content_type="application/octet-stream")
        return True

    server.set_handler_hook(binary)
    with pytest.raises(IndexPageError, match="unexpected Content-Type"):
        _client().project_page(source_for(server.index_url, "index"), DEMO)


def test_client_find_links_page_read_once(index_server: MakeIndexServer, root: Path) -> None:
    server = index_server(root)
    links_page = root / "links.html"
    links_page.write_text(
        '<a href="files/demo-1.0-py3-none-any.whl">a</a><a href="files/other-2.0.tar.gz">b</a>'
    )
    timings = Timings()
    client = _client(timings)
    source = source_for(f"{server.url}/links.html", "find-links")
    for _ in range(3):
        page = client.find_links(source, DEMO)
        assert [link.filename for link in page.links] == ["demo-1.0-py3-none-any.whl"]
    assert len(server.requests("/links.html")) == 1
    assert [r.method for r in timings.requests] == ["GET"]
    assert timings.requests[0].bytes > 0


def test_index_options_without_hashes_give_links_without_hashes(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "d", Dist("demo", "1.0"))
    write_index(tmp_path / "idx", [wheel], IndexOptions(hashes=False, metadata_files=False))
    page = _client().project_page(source_for((tmp_path / "idx/simple").as_uri(), "index"), DEMO)
    assert page is not None
    (link,) = page.links
    assert link.sha256 is None and link.metadata_url is None


def test_session_is_plain_requests() -> None:
    session = make_session(HttpPolicy(), CredentialStore())
    assert isinstance(session, requests.Session)
    user_agent = session.headers["User-Agent"]
    assert isinstance(user_agent, str) and user_agent.startswith("fetchplan/")


def test_session_reads_proxy_settings_per_origin(
    index_server: MakeIndexServer, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The session keeps the environment's proxy answer per origin (requests would read
    # os.environ again for every request): one origin's answer must not leak to another.
    origin, proxy = index_server(root), index_server(root)
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    session = make_session(HttpPolicy(retries=0), CredentialStore())
    through_proxy = f"http://localhost:{origin.port}/simple/demo/"
    try:
        for url in (f"{origin.url}/simple/demo/", through_proxy) * 2:
            session.get(url, timeout=10).close()
    finally:
        session.close()
    assert [r.path for r in origin.requests()] == ["/simple/demo/"] * 2
    assert [r.path for r in proxy.requests()] == [through_proxy] * 2


def _release_page() -> dict[str, object]:
    return {
        "meta": {"api-version": "1.1"},
        "name": "demo",
        "versions": ["0.9", "1.0"],
        "files": [
            {"filename": "demo-0.9.tar.gz", "url": "0.9.tgz", "hashes": "not an object"},
            {"filename": "demo-1.0-py3-none-any.whl", "url": "a.whl", "hashes": {"sha256": SHA}},
            {"filename": "demo-1.0.0.tar.gz", "url": "b.tgz", "hashes": {}, "yanked": True},
            {"filename": "other-1.0-py3-none-any.whl", "url": "c.whl", "hashes": {}},
            "not even an object",
        ],
    }


def test_lazy_page_reads_a_version_when_asked_and_its_malformed_files_only_then() -> None:
    compact = compact_json_page(json.dumps(_release_page()), PAGE, DEMO)
    page = ProjectPage(source_for(INDEX, "index"), PAGE, compact)
    assert [str(v) for v in page.versions] == ["1.0", "0.9"]
    # "1.0" and "1.0.0" are one version; the other project's file is not among them.
    newest = page.links_for(page.versions[0])
    assert [(link.filename, link.url, link.yanked) for link in newest] == [
        ("demo-1.0-py3-none-any.whl", PAGE + "a.whl", False),
        ("demo-1.0.0.tar.gz", PAGE + "b.tgz", True),
    ]
    assert newest[0].hashes == {"sha256": SHA} and newest[0].index == INDEX
    with pytest.raises(IndexPageError, match=r"files\[0\]\.hashes must be an object"):
        page.links_for(page.versions[1])
    # Every file at once: the first malformed entry fails it, as parse_json_page always did.
    with pytest.raises(IndexPageError, match=r"files\[0\]"):
        _ = page.links


def test_compact_page_round_trips_as_plain_data_and_refuses_other_data() -> None:
    document = _release_page()
    document["files"] = document["files"][1:4]  # type: ignore[index]
    body = json.dumps(document).encode()
    codec = CompactPageCodec(JSON_TYPE, PAGE, DEMO)
    compact = codec.parse(body)
    assert compact.file_count == 3
    assert codec.from_data(codec.to_data(compact)) == compact
    assert CompactPage.from_data(marshal.loads(marshal.dumps(compact.to_data()))) == compact
    kept = ProjectPage(None, PAGE, codec.from_data(codec.to_data(compact)))
    assert [link.filename for link in kept.links] == [
        "demo-1.0-py3-none-any.whl",
        "demo-1.0.0.tar.gz",
    ]

    data = compact.to_data()
    for bad in (None, (), data[:-1], (99, *data[1:]), (*data[:5], [(1, ())], (), None, None)):
        with pytest.raises(CompactPageError):
            CompactPage.from_data(bad)
    with pytest.raises(CompactPageError, match="not the page"):
        CompactPageCodec(JSON_TYPE, PAGE + "x/", DEMO).from_data(codec.to_data(compact))
    with pytest.raises(CompactPageError):
        codec.from_data(codec.to_data(compact)[:-9])
    # A release damaged in store fails when it is read, as a CompactPageError.
    releases = tuple((version, pos, b'["damaged"]') for version, pos, _ in compact.releases)
    damaged = CompactPage.from_data((*data[:5], releases, (), None, None))
    with pytest.raises(CompactPageError, match="damaged release"):
        ProjectPage(None, PAGE, damaged).links_for(Version("1.0"))


def test_html_files_are_grouped_by_href_and_named_by_the_joined_url() -> None:
    html = (
        "<html><body>"
        '<a href="./sub/../demo-1.0-py3-none-any.whl#sha256=' + SHA + '">a</a>'
        '<a href="demo-2.0.tar.gz?x=1" data-yanked="">b</a>'
        '<a href="..%2Fdemo-3.0-py3-none-any.whl">traversal</a>'
        "</body></html>"
    )
    page = ProjectPage(None, PAGE, compact_html_page(html, PAGE, DEMO))
    assert [str(v) for v in page.versions] == ["2.0", "1.0"]
    (sdist,) = page.links_for(Version("2.0"))
    assert sdist.yanked and sdist.yanked_reason is None
    (wheel,) = page.links_for(Version("1.0"))
    assert wheel.url == PAGE + "demo-1.0-py3-none-any.whl" and wheel.sha256 == SHA


def test_json_the_fast_reader_refuses_is_read_as_the_standard_library_reads_it() -> None:
    # NaN and lone surrogate escapes are not JSON msgspec accepts; json.loads reads them, and
    # so does the page: the versions they belong to are never asked for here.
    text = json.dumps(
        {
            "meta": {"api-version": "1.0"},
            "files": [
                {"filename": "demo-0.1.tar.gz", "url": "a", "hashes": {}, "size": float("nan")},
                {"filename": "demo-0.2-\ud800.tar.gz", "url": "b", "hashes": {}},
                {"filename": "demo-1.0.tar.gz", "url": "c", "hashes": {}, "size": 3},
            ],
        }
    )
    page = ProjectPage(None, PAGE, compact_json_page(text, PAGE, DEMO))
    assert [str(v) for v in page.versions] == ["1.0", "0.1"]
    (sdist,) = page.links_for(Version("1.0"))
    assert sdist.size == 3 and sdist.url == PAGE + "c"
    with pytest.raises(IndexPageError, match=r"files\[0\]\.size"):
        page.links_for(Version("0.1"))


def test_link_urls_are_percent_encoded_as_a_request_sends_them() -> None:
    html = '<a href="../../files/d%C3%A9mo dir/demo-1.0-py3-none-any.whl">x</a>'
    html += '<a href="../../files/dé/demo-1.0.tar.gz">y</a>'
    links = parse_html_page(html, PAGE, INDEX, DEMO)
    assert [link.url for link in links] == [
        "https://idx.example.test/files/d%C3%A9mo%20dir/demo-1.0-py3-none-any.whl",
        "https://idx.example.test/files/d%C3%A9/demo-1.0.tar.gz",
    ]


def _page_with_size(size: str) -> str:
    good = {"filename": "demo-0.9-py3-none-any.whl", "url": "a.whl", "hashes": {"sha256": SHA}}
    return (
        '{"meta": {"api-version": "1.1"}, "files": ['
        + json.dumps(good)
        + ', {"filename": "demo-1.0-py3-none-any.whl", "url": "b.whl", "hashes": {}, "size": '
        + size
        + "}]}"
    )


def test_a_huge_integer_fails_only_the_version_read_in_one_line() -> None:
    # msgspec refuses an integer past 64 bits; the bounded reader then names the page.
    page = ProjectPage(None, PAGE, compact_json_page(_page_with_size("1" + "0" * 5000), PAGE, DEMO))
    (link,) = page.links_for(Version("0.9"))
    assert link.url == "https://idx.example.test/simple/demo/a.whl"
    with pytest.raises(IndexPageError, match="integer") as caught:
        page.links_for(Version("1.0"))
    assert "\n" not in str(caught.value) and PAGE in str(caught.value)


def test_a_page_nested_past_the_bound_is_one_line() -> None:
    # msgspec stops with a RecursionError, not its own error: the bounded reader names the page.
    with pytest.raises(IndexPageError, match="nested too deeply") as caught:
        compact_json_page(_page_with_size("[" * 100_000 + "]" * 100_000), PAGE, DEMO)
    assert "\n" not in str(caught.value) and PAGE in str(caught.value)


@pytest.mark.parametrize(
    ("version", "problem"),
    [
        ("1" * 5000 + ".0", "unreadable repository API version '1111"),
        ("\u00b2.0", "unreadable repository API version"),
        ("2.0", "unsupported repository API version '2.0'"),
    ],
)
def test_an_api_version_out_of_reach_is_one_short_line(version: str, problem: str) -> None:
    text = json.dumps({"meta": {"api-version": version}, "files": []})
    with pytest.raises(IndexPageError, match=re.escape(problem)) as caught:
        compact_json_page(text, PAGE, DEMO)
    assert len(str(caught.value)) < 200


_BASES = (
    "https://index.test/simple/demo/",
    "https://user:secret@index.test/simple/demo/",
    "https://index.test/simple/demo/?page=2",
    "http://127.0.0.1:8080/simple/demo",
    "file:///srv/simple/demo/index.html",
)
_HREFS = (
    "../../files/demo-1.0-py3-none-any.whl#sha256=" + "ab" * 32,
    "../../files/demo-1.0-py3-none-any.whl",
    "../../files/demo-1.0.tar.gz#",
    "/files/demo-1.0.tar.gz#md5=00#second",
    "demo-1.0.tar.gz",
    "./demo-1.0.tar.gz",
    "sub/../demo-1.0.tar.gz",
    "sub/./x/demo-1.0.tar.gz",
    "//mirror.test/files/demo-1.0.tar.gz",
    "https://files.test/a/b/demo%2B1.0.tar.gz",
    "https://u:p@files.test/a/demo-1.0.tar.gz#sha256=00",
    "a?b/../demo-1.0.tar.gz",
    "a?/demo.whl",
    "dir/demo 1.0.tar.gz",
    "dir/démo-1.0.tar.gz#frag é",
    "dir/demo;type=a.whl",
    "dir/..",
    "dir/.",
    "  ../../files/demo-1.0.tar.gz  ",
    "../../../../../too/high/demo.whl",
    "https://files.test",
    "https://files.test/demo.whl",
    "//files.test",
    "a//b/demo.whl",
    "dir/",
)


@pytest.mark.parametrize("base", _BASES)
def test_links_join_as_whole_hrefs_would(base: str) -> None:
    """The per-directory join of hrefs gives exactly the URL and fragment of joining each
    whole href (what the index client did before)."""
    from fetchplan.planner.index import _absolute, _absolute_whole

    for href in _HREFS:
        for _ in range(2):  # the second time from the joined directories kept
            assert _absolute(base, href) == _absolute_whole(base, href.strip()), href
