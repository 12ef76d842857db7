"""The persistent cache of index pages and metadata, end to end against counting servers.

Each test plans twice (or more) with one cache directory against a real loopback server that
records every request (:class:`~tests.support.servers.IndexServer`), and asserts what the
later plans asked for, what they parsed (the ``cache`` counts of ``--timings``) and that they
wrote the same plan.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from packaging.utils import canonicalize_name

from fetchplan.cache import read_entry, write_entry
from fetchplan.planner.api import PlanOptions, PlanResult, make_plan
from fetchplan.planner.index import (
    CompactPageCodec,
    CompactPageError,
    IndexUnavailable,
    ProjectPage,
)
from tests.conftest import CLI_TIMEOUT, MakeIndex, MakeIndexServer, MakeNginxServer, RunCli
from tests.support.index import IndexOptions, write_index
from tests.support.processes import Processes
from tests.support.servers import IndexServer, ServerOptions
from tests.support.wheels import Dist, build_wheel

TARGET = {"python_version": "3.11", "platforms": ("manylinux_2_17_x86_64",)}
DISTS = [
    Dist("app", "1.0", requires=["lib>=1"]),
    Dist("lib", "1.0"),
    Dist("lib", "2.0", requires=["base"]),
    Dist("base", "1.1"),
]
PAGES = ["/simple/app/", "/simple/base/", "/simple/lib/"]


def _options(tmp_path: Path, index_url: str, **kw: Any) -> PlanOptions:
    base = PlanOptions(
        requirements=("app",),
        index_url=index_url,
        output=tmp_path / "out" / "plan.json",
        dest=tmp_path / "out" / "wheels",
        cache_dir=tmp_path / "cache",
        isolated=True,
        timeout=10.0,
        backoff=0.0,
        **TARGET,  # type: ignore[arg-type]
    )
    return replace(base, **kw)


def _plan(result: PlanResult) -> dict[str, Any]:
    document = result.plan.to_dict()
    document.pop("created")
    return document


def _pins(result: PlanResult) -> dict[str, str]:
    return {a.name: a.version for a in result.plan.artifacts}


def _counts(result: PlanResult) -> dict[str, dict[str, int]]:
    cache: dict[str, dict[str, int]] = result.timings.to_dict()["cache"]
    return cache


def _pages(server: IndexServer) -> list[tuple[str, int | None, str | None]]:
    """(path, status, If-None-Match) of every project page request, sorted by path."""
    return sorted(
        (urlsplit(r.path).path, r.status, r.headers.get("if-none-match"))
        for r in server.requests("/simple/")
    )


def _cache_files(tmp_path: Path, section: str) -> list[Path]:
    return sorted(p for p in (tmp_path / "cache" / section).rglob("*") if p.is_file())


@pytest.mark.parametrize("pep658", [True, False], ids=["pep658", "ranges"])
def test_a_second_plan_revalidates_every_page_and_asks_for_no_metadata(
    make_index: MakeIndex, index_server: MakeIndexServer, tmp_path: Path, pep658: bool
) -> None:
    server = index_server(DISTS, index_options=IndexOptions(metadata_files=pep658))
    options = _options(tmp_path, server.index_url)
    first = make_plan(options)
    assert _pins(first) == {"app": "1.0", "lib": "2.0", "base": "1.1"}
    assert server.requests("/files/"), "the first plan reads metadata"
    assert _counts(first)["pages"] == {"parsed": 3}
    server.reset_counters()

    second = make_plan(options)
    # One request per page (the early one for app is used, not sent again), each a 304.
    pages = _pages(server)
    assert [path for path, _, _ in pages] == PAGES
    assert all(status == 304 and etag for _, status, etag in pages), pages
    assert server.requests("/files/") == []
    assert _counts(second) == {"pages": {"revalidated": 3}, "metadata": {"hits": 3}}
    assert _plan(second) == _plan(first)


def test_without_validators_an_unchanged_page_is_downloaded_but_not_parsed_again(
    index_server: MakeIndexServer, tmp_path: Path
) -> None:
    server = index_server(DISTS, options=ServerOptions(etags=False))
    options = _options(tmp_path, server.index_url, requirements=("app", "base"))
    first = make_plan(options)
    assert _counts(first)["pages"] == {"parsed": 3}
    server.reset_counters()

    second = make_plan(options)
    assert _pages(server) == [(path, 200, None) for path in PAGES]
    assert _counts(second)["pages"] == {"reused": 3}
    assert server.requests("/files/") == []
    assert _plan(second) == _plan(first)


def test_a_new_release_is_seen(
    make_index: MakeIndex,
    index_server: MakeIndexServer,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    root = make_index(DISTS)
    server = index_server(root)
    options = _options(tmp_path, server.index_url)
    assert _pins(make_plan(options))["lib"] == "2.0"

    new = build_wheel(tmp_path_factory.mktemp("new"), Dist("lib", "3.0"))
    write_index(root, [*sorted((root / "files").glob("*.whl")), new])
    server.reset_counters()
    second = make_plan(options)
    assert _pins(second) == {"app": "1.0", "lib": "3.0"}
    statuses = {path: status for path, status, _ in _pages(server)}
    assert statuses == {"/simple/app/": 304, "/simple/lib/": 200}
    assert _counts(second)["pages"] == {"revalidated": 1, "parsed": 1}


def test_refresh_fetches_and_parses_every_page_again(
    index_server: MakeIndexServer, tmp_path: Path
) -> None:
    server = index_server(DISTS)
    options = _options(tmp_path, server.index_url)
    first = make_plan(options)
    server.reset_counters()

    refreshed = make_plan(replace(options, refresh=True))
    assert _pages(server) == [(path, 200, None) for path in PAGES]
    assert _counts(refreshed)["pages"] == {"parsed": 3}
    assert server.requests("/files/"), "--refresh reads metadata again"
    assert _plan(refreshed) == _plan(first)

    server.reset_counters()
    one = make_plan(replace(options, refresh_packages=("LIB",)))
    assert _pages(server) == [
        ("/simple/app/", 304, _pages_etag(server, "/simple/app/")),
        ("/simple/base/", 304, _pages_etag(server, "/simple/base/")),
        ("/simple/lib/", 200, None),
    ]
    assert {urlsplit(r.path).path for r in server.requests("/files/")} == {
        "/files/lib-2.0-py3-none-any.whl.metadata"
    }
    assert _plan(one) == _plan(first)


def _pages_etag(server: IndexServer, path: str) -> str | None:
    (request,) = [r for r in server.requests(path) if urlsplit(r.path).path == path]
    return request.headers.get("if-none-match")


def test_a_fresh_page_is_reused_without_a_request_and_no_cache_revalidates(
    index_server: MakeIndexServer, tmp_path: Path
) -> None:
    server = index_server(
        DISTS, options=ServerOptions(page_headers={"Cache-Control": "max-age=600"})
    )
    options = _options(tmp_path, server.index_url)
    first = make_plan(options)
    server.reset_counters()
    second = make_plan(options)
    assert server.requests() == []
    assert _counts(second)["pages"] == {"fresh": 3}
    assert _plan(second) == _plan(first)

    server.options.page_headers = {"Cache-Control": "no-cache, max-age=600"}
    make_plan(replace(options, refresh=True))  # stored anew, with no-cache
    server.reset_counters()
    third = make_plan(options)
    assert [status for _, status, _ in _pages(server)] == [304, 304, 304]
    assert _counts(third)["pages"] == {"revalidated": 3}


def test_no_store_is_not_stored(index_server: MakeIndexServer, tmp_path: Path) -> None:
    server = index_server(DISTS, options=ServerOptions(page_headers={"Cache-Control": "no-store"}))
    options = _options(tmp_path, server.index_url)
    first = make_plan(options)
    assert _cache_files(tmp_path, "pages") == []
    assert _cache_files(tmp_path, "metadata"), "metadata files carry no no-store"
    server.reset_counters()
    second = make_plan(options)
    assert _pages(server) == [(path, 200, None) for path in PAGES]
    assert _counts(second)["pages"] == {"parsed": 3}
    assert _plan(second) == _plan(first)


def test_corrupt_cache_entries_are_misses_and_are_replaced(
    index_server: MakeIndexServer, tmp_path: Path
) -> None:
    server = index_server(DISTS)
    options = _options(tmp_path, server.index_url)
    first = make_plan(options)
    entries = _cache_files(tmp_path, "pages") + _cache_files(tmp_path, "metadata")
    assert len(entries) == 3 + 3 + 3  # page answers, parsed pages, metadata
    for i, path in enumerate(entries):
        data = path.read_bytes()
        if i % 3 == 0:
            path.write_bytes(data[: len(data) // 2])  # truncated
        elif i % 3 == 1:
            path.write_bytes(data[:-1] + bytes([data[-1] ^ 0x01]))  # one bit flipped
        else:
            write_entry(path, b"\x00not what this entry should hold")  # checksum fine, content not

    second = make_plan(options)
    assert _plan(second) == _plan(first)
    server.reset_counters()
    third = make_plan(options)
    assert _counts(third) == {"pages": {"revalidated": 3}, "metadata": {"hits": 3}}
    assert server.requests("/files/") == []
    assert _plan(third) == _plan(first)


def test_two_plans_at_once_share_the_cache(
    index_server: MakeIndexServer,
    fetchplan_cmd: list[str],
    cli_env: dict[str, str],
    tmp_path: Path,
    processes: Processes,
) -> None:
    dists = [Dist("app", "1.0", requires=[f"dep{i}" for i in range(12)])]
    dists += [Dist(f"dep{i}", "1.0") for i in range(12)]
    server = index_server(dists, options=ServerOptions(delay=0.02))

    def plan_twice_at_once(tag: str) -> list[dict[str, Any]]:
        started = [
            processes.start(
                [
                    *fetchplan_cmd,
                    "plan",
                    "app",
                    "--index-url",
                    server.index_url,
                    "--cache-dir",
                    tmp_path / "cache",
                    "--python-version",
                    "3.11",
                    "-o",
                    tmp_path / f"{tag}{i}" / "plan.json",
                ],
                env=cli_env,
                cwd=tmp_path,
            )
            for i in range(2)
        ]
        plans = []
        for i, process in enumerate(started):
            _out, err = process.communicate(timeout=CLI_TIMEOUT)
            assert process.returncode == 0, err
            document = json.loads((tmp_path / f"{tag}{i}" / "plan.json").read_text())
            document.pop("created")
            plans.append(document)
        return plans

    cold = plan_twice_at_once("cold")
    assert cold[0] == cold[1]
    assert len(cold[0]["artifacts"]) == 13
    server.reset_counters()
    warm = plan_twice_at_once("warm")
    assert warm == cold
    assert {status for _, status, _ in _pages(server)} == {304}
    assert server.requests("/files/") == []


def test_credentials_never_enter_the_cache_nor_serve_other_credentials(
    index_server: MakeIndexServer, tmp_path: Path
) -> None:
    server = index_server(
        DISTS,
        options=ServerOptions(
            auth=("alice", "s3cret-pw"), page_headers={"Cache-Control": "max-age=600"}
        ),
    )
    port = server.port
    good = f"http://alice:s3cret-pw@127.0.0.1:{port}/simple/"
    first = make_plan(_options(tmp_path, good))
    assert _pins(first)["lib"] == "2.0"
    secrets = [b"s3cret-pw", base64.b64encode(b"alice:s3cret-pw")]
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(secret in data for secret in secrets), path

    # The pages are fresh for the credentials that fetched them, and for those only.
    server.reset_counters()
    assert _counts(make_plan(_options(tmp_path, good)))["pages"] == {"fresh": 3}
    assert server.requests("/simple/") == []
    for other in (f"http://alice:wrong@127.0.0.1:{port}/simple/", server.index_url):
        with pytest.raises(IndexUnavailable, match="401"):
            make_plan(_options(tmp_path, other))


def test_no_cache_reads_and_writes_nothing(index_server: MakeIndexServer, tmp_path: Path) -> None:
    server = index_server(DISTS)
    options = _options(tmp_path, server.index_url)
    make_plan(options)
    server.reset_counters()
    result = make_plan(replace(options, no_cache=True, cache_dir=tmp_path / "unused"))
    assert not (tmp_path / "unused").exists()
    assert "cache" not in result.timings.to_dict()
    assert _pages(server) == [(path, 200, None) for path in PAGES]
    assert server.requests("/files/")


def test_cache_command_shows_and_trims_the_cache(
    index_server: MakeIndexServer, run_cli: RunCli, tmp_path: Path
) -> None:
    server = index_server(DISTS)
    make_plan(_options(tmp_path, server.index_url))
    cache = tmp_path / "cache"

    shown = run_cli("cache", "dir")
    assert shown.returncode == 0
    assert shown.stdout.strip() == str(Path(os.environ["XDG_CACHE_HOME"]) / "fetchplan")

    info = run_cli("cache", "info", "--cache-dir", cache)
    assert info.returncode == 0, info.stderr
    rows = {line.split()[0]: line.split()[1] for line in info.stdout.splitlines()[1:]}
    assert rows["pages"] == "6"
    assert rows["metadata"] == "3"

    corrupt = _cache_files(tmp_path, "metadata")[0]
    corrupt.write_bytes(b"garbage")
    leftover = cache / "metadata" / "ab" / ".abc.tmp"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"half")
    two_hours_ago = time.time() - 7200
    os.utime(leftover, (two_hours_ago, two_hours_ago))
    pruned = run_cli("cache", "prune", "--cache-dir", cache)
    assert pruned.returncode == 0, pruned.stderr
    assert "pruned 2 files" in pruned.stdout
    assert not leftover.exists()
    assert not corrupt.exists()
    assert len(_cache_files(tmp_path, "metadata")) == 2

    cleaned = run_cli("cache", "clean", "pages", "--cache-dir", cache)
    assert cleaned.returncode == 0, cleaned.stderr
    assert _cache_files(tmp_path, "pages") == []
    assert len(_cache_files(tmp_path, "metadata")) == 2
    bad = run_cli("cache", "clean", "nonsense", "--cache-dir", cache)
    assert bad.returncode == 2
    assert "no cache section 'nonsense'" in bad.stderr
    assert run_cli("cache", "clean", "--cache-dir", cache).returncode == 0
    assert [p for p in cache.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("page", ["index.json", "index.html"])
def test_a_kept_page_reads_back_as_the_page_it_was_parsed_into(
    make_index: MakeIndex, page: str
) -> None:
    root = make_index(
        [Dist("lib", "1.0"), Dist("lib", "2.0", tag="cp311-cp311-manylinux_2_17_x86_64")],
        IndexOptions(
            yanked={"lib-1.0-py3-none-any.whl": "broken"},
            requires_python={"lib-1.0-py3-none-any.whl": ">=3.8"},
        ),
    )
    body = (root / "simple" / "lib" / page).read_bytes()
    kind = "application/vnd.pypi.simple.v1+json" if page.endswith("json") else "text/html"
    lib = canonicalize_name("lib")
    codec = CompactPageCodec(kind, "http://127.0.0.1:1/simple/lib/", lib)
    compact = codec.parse(body)
    kept = codec.from_data(codec.to_data(compact))
    assert kept == compact
    links = ProjectPage(None, "http://127.0.0.1:1/simple/lib/", kept).links
    assert len(links) == 2
    assert any(link.yanked_reason == "broken" for link in links)
    other = CompactPageCodec(kind, "http://127.0.0.1:1/simple/lib/", canonicalize_name("app"))
    with pytest.raises(CompactPageError, match="not the page"):
        other.from_data(codec.to_data(compact))


def test_an_entry_is_read_only_whole_and_unaltered(tmp_path: Path) -> None:
    path = tmp_path / "entry"
    write_entry(path, b"payload")
    assert read_entry(path) == b"payload"
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]  # no temporary file left
    data = path.read_bytes()
    for damaged in (data[:-1], data[:10], b"", data[:-1] + b"X", b"payload"):
        path.write_bytes(damaged)
        assert read_entry(path) is None
        assert not path.exists()
    assert read_entry(tmp_path / "absent") is None


def test_an_entry_of_an_older_format_is_a_quiet_miss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "entry"
    write_entry(path, b"payload")
    data = path.read_bytes()
    magic_end = data.index(b"fetchplan-cache-entry") + len(b"fetchplan-cache-entry")
    # The format byte after the magic is another version's (an older fetchplan wrote it).
    path.write_bytes(data[:magic_end] + bytes([data[magic_end] - 1]) + data[magic_end + 1 :])
    with caplog.at_level("DEBUG", logger="fetchplan.cache"):
        assert read_entry(path) is None
    assert not path.exists()
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    # Damage is still said out loud.
    path.write_bytes(data[:-1] + b"X")
    with caplog.at_level("WARNING", logger="fetchplan.cache"):
        assert read_entry(path) is None
    assert any("corrupt cache entry" in r.getMessage() for r in caplog.records)


def test_against_nginx_a_second_plan_gets_only_304s(
    nginx_server: MakeNginxServer, tmp_path: Path
) -> None:
    """nginx's own validators (a weak-looking ETag of mtime and size, Last-Modified), as a
    static mirror serves them; counted from its access log."""
    server = nginx_server(DISTS, index_options=IndexOptions(metadata_files=False))
    options = _options(tmp_path, server.index_url)
    first = make_plan(options)
    server.wait_for_requests(len(server.requests()))
    server.reset_counters()
    second = make_plan(options)
    pages = server.wait_for_requests(3, "/simple/")
    assert sorted((urlsplit(r.path).path, r.status) for r in pages) == [
        (path, 304) for path in PAGES
    ]
    assert server.requests("/files/") == []
    assert _plan(second) == _plan(first)


def test_a_size_learnt_by_head_is_kept_with_the_metadata(
    index_server: MakeIndexServer, tmp_path: Path
) -> None:
    # HTML pages give no sizes (PEP 700 is JSON only): the first plan asks with HEAD.
    server = index_server(DISTS, options=ServerOptions(formats="html"))
    options = _options(tmp_path, server.index_url)
    first = make_plan(options)
    assert len([r for r in server.requests() if r.method == "HEAD"]) == 3
    assert _counts(first)["metadata"] == {"misses": 3, "stored": 3, "sizes": 3}
    server.reset_counters()
    second = make_plan(options)
    assert [r.method for r in server.requests()] == ["GET"] * 3  # the pages only
    assert _plan(second) == _plan(first)
    assert all(a.size for a in second.plan.artifacts)
