"""Wheel and sdist metadata: pure zip parsing over archives built in memory, and the fetch
order (local, PEP 658, ranges, whole) against a small HTTP server started by each test."""

from __future__ import annotations

import hashlib
import io
import re
import struct
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from fetchplan.cache import ArtifactCache
from fetchplan.errors import HashMismatch, NetworkError
from fetchplan.planner import zipranges
from fetchplan.planner.metadata import (
    FetchedMetadata,
    MetadataError,
    MetadataSource,
    SdistNeedsBuild,
    head_size,
    header_fields,
    metadata_json,
    parse_metadata,
    sdist_metadata,
    wheel_metadata,
)
from fetchplan.planner.zipranges import (
    CentralDirectory,
    NeedBytes,
    ZipFormatError,
    locate_central_directory,
    parse_central_directory,
    read_metadata_member,
    select_metadata_name,
)
from tests.support.wheels import Dist, build_sdist, build_wheel

TIMEOUT = 5.0


# --- helpers: archives in memory -------------------------------------------------------------


def _reader(data: bytes, calls: list[tuple[int, int]]) -> zipranges.RangeReader:
    def read(start: int, end: int) -> bytes:
        calls.append((start, end))
        return data[start : end + 1]

    return read


def _read_metadata(data: bytes, project: str, version: str, tail: int = 65536) -> bytes:
    calls: list[tuple[int, int]] = []
    result, count = read_metadata_member(
        data[-tail:],
        len(data),
        _reader(data, calls),
        project=project,
        version=version,
        max_size=1 << 20,
    )
    assert count == len(calls)
    return result


def _zip(members: dict[str, bytes], *, stored: frozenset[str] = frozenset()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buffer.getvalue()


METADATA = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: idna>=3\n\n"


def _directory(data: bytes) -> tuple[CentralDirectory, tuple[zipranges.ZipEntry, ...]]:
    located = locate_central_directory(data, 0)
    assert isinstance(located, CentralDirectory)
    raw = data[located.start : located.end]
    return located, parse_central_directory(raw, located)


# --- pure zip parsing ------------------------------------------------------------------------


def test_central_directory_matches_zipfile(tmp_path: Path) -> None:
    data = build_wheel(tmp_path, Dist("demo-pkg", "1.2", padding=5000)).read_bytes()
    _, entries = _directory(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        expected = [
            (i.filename, i.header_offset, i.compress_size, i.file_size, i.CRC)
            for i in zf.infolist()
        ]
    got = [(e.name, e.header_offset, e.compressed_size, e.file_size, e.crc32) for e in entries]
    assert got == expected


def test_metadata_member_from_small_tail_asks_for_more(tmp_path: Path) -> None:
    data = build_wheel(tmp_path, Dist("demo", "1.0", requires=["idna>=3"])).read_bytes()
    calls: list[tuple[int, int]] = []
    # 10 bytes cannot hold the end record: one read widens the window to where it must be.
    result, count = read_metadata_member(
        data[-10:], len(data), _reader(data, calls), project="demo", version="1.0", max_size=4096
    )
    assert b"Requires-Dist: idna>=3" in result
    assert count == 1
    assert calls == [(0, len(data) - 11)]


def test_central_directory_larger_than_first_tail(tmp_path: Path) -> None:
    extra = {f"demo/module_{i:04d}_with_a_long_name.py": b"" for i in range(1500)}
    data = build_wheel(tmp_path, Dist("demo", "1.0"), extra_members=extra).read_bytes()
    directory, _ = _directory(data)
    assert directory.size > 65536
    calls: list[tuple[int, int]] = []
    result, _ = read_metadata_member(
        data[-65536:],
        len(data),
        _reader(data, calls),
        project="demo",
        version="1.0",
        max_size=4096,
    )
    assert result.startswith(b"Metadata-Version:")
    # One read completes the central directory; it ends exactly where the first tail began.
    assert calls[0] == (directory.start, len(data) - 65536 - 1)


def test_stored_metadata_member() -> None:
    data = _zip(
        {"demo/__init__.py": b"x = 1\n", "demo-1.0.dist-info/METADATA": METADATA},
        stored=frozenset({"demo-1.0.dist-info/METADATA"}),
    )
    _, entries = _directory(data)
    assert [e.method for e in entries] == [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED]
    assert _read_metadata(data, "demo", "1.0") == METADATA


class _Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then writes data descriptors after each member."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.buffer += data
        return len(data)


def test_members_with_data_descriptors() -> None:
    stream = _Unseekable()
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("demo-1.0.dist-info/METADATA", METADATA)
        zf.writestr("demo-1.0.dist-info/RECORD", b"")
    data = bytes(stream.buffer)
    _, entries = _directory(data)
    assert all(e.flags & 0x08 for e in entries)
    # The local header carries zero sizes: the central directory's sizes are the ones used.
    assert struct.unpack_from("<I", data, 18)[0] == 0
    assert _read_metadata(data, "demo", "1.0") == METADATA


def _zip64(
    members: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, *, saturate: bool = True
) -> bytes:
    """A zip with ZIP64 end records and ZIP64 extra fields, built small by lowering limits."""
    with monkeypatch.context() as patch:
        patch.setattr(zipfile, "ZIP64_LIMIT", 16)
        patch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
        data = bytearray(_zip(members))
    if saturate:
        # Saturate the classic end record, as a writer does when values really overflow.
        eocd = data.rfind(b"PK\x05\x06")
        struct.pack_into("<HHII", data, eocd + 8, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    return bytes(data)


def test_zip64_end_records_and_extra_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    members = {
        "demo/__init__.py": b"x = 1\n" * 20,
        "demo-1.0.dist-info/METADATA": METADATA,
        "demo-1.0.dist-info/RECORD": b"",
    }
    data = _zip64(members, monkeypatch)
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data
    directory, entries = _directory(data)
    assert directory.entries == 3
    assert [e.name for e in entries] == list(members)
    assert entries[1].header_offset > 0
    assert _read_metadata(data, "demo", "1.0") == METADATA
    # A tail holding only the classic end record: the ZIP64 records are fetched on demand.
    calls: list[tuple[int, int]] = []
    result, _ = read_metadata_member(
        data[-22:], len(data), _reader(data, calls), project="demo", version="1.0", max_size=4096
    )
    assert result == METADATA
    assert calls[0][1] == len(data) - 23


@pytest.mark.parametrize("saturate", [True, False], ids=["saturated", "classic-values-kept"])
@pytest.mark.parametrize("prefix", [0, 1000], ids=["plain", "prepended-data"])
def test_zip64_from_a_tiny_tail(
    monkeypatch: pytest.MonkeyPatch, saturate: bool, prefix: int
) -> None:
    members = {"demo/x.py": b"x" * 40, "demo-1.0.dist-info/METADATA": METADATA}
    data = b"\0" * prefix + _zip64(members, monkeypatch, saturate=saturate)
    for tail in (22, 50, len(data)):
        calls: list[tuple[int, int]] = []
        result, _ = read_metadata_member(
            data[-tail:],
            len(data),
            _reader(data, calls),
            project="demo",
            version="1.0",
            max_size=4096,
        )
        assert result == METADATA, tail


def test_prepended_data_shifts_every_offset(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, Dist("demo", "1.0")).read_bytes()
    data = b"#!/bin/sh\nexit 0\n" + b"\0" * 983 + wheel
    directory, entries = _directory(data)
    assert directory.shift == 1000
    assert entries[0].header_offset == 1000
    assert b"Name: demo" in _read_metadata(data, "demo", "1.0", tail=300)


def test_locate_reports_missing_bytes_for_a_short_tail(tmp_path: Path) -> None:
    data = build_wheel(tmp_path, Dist("demo", "1.0")).read_bytes()
    located = locate_central_directory(data[-5:], len(data) - 5)
    assert isinstance(located, NeedBytes)
    assert located.start < len(data) - 5


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda d: d[:-10], "no end-of-central-directory record"),
        (lambda d: b"not a zip at all" * 10, "no end-of-central-directory record"),
        (lambda d: d[:40] + d[60:], "central directory"),
    ],
    ids=["truncated-end", "not-a-zip", "bytes-cut-from-the-middle"],
)
def test_damaged_archives_are_refused(
    tmp_path: Path, mangle: Callable[[bytes], bytes], message: str
) -> None:
    data = build_wheel(tmp_path, Dist("demo", "1.0")).read_bytes()
    with pytest.raises(ZipFormatError, match=message):
        _read_metadata(mangle(data), "demo", "1.0")


def test_duplicate_metadata_member_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("demo-1.0.dist-info/METADATA", METADATA)
        zf.writestr("demo-1.0.dist-info/METADATA", METADATA.replace(b"idna", b"evil"))
    with pytest.raises(ZipFormatError, match="appears 2 times"):
        _read_metadata(buffer.getvalue(), "demo", "1.0")


def test_corrupt_member_fails_crc() -> None:
    data = bytearray(
        _zip(
            {"demo-1.0.dist-info/METADATA": METADATA},
            stored=frozenset({"demo-1.0.dist-info/METADATA"}),
        )
    )
    at = data.find(b"Name: demo")
    data[at + 6] = ord("X")
    with pytest.raises(ZipFormatError, match="CRC-32"):
        _read_metadata(bytes(data), "demo", "1.0")


def test_metadata_size_limit_guards_against_bombs() -> None:
    bomb = METADATA + b"Description: " + b"a" * 2_000_000 + b"\n"
    data = _zip({"demo-1.0.dist-info/METADATA": bomb})
    assert len(data) < 5000
    with pytest.raises(ZipFormatError, match=r"is 2000\d+ bytes \(limit 1048576\)"):
        _read_metadata(data, "demo", "1.0")
    # A directory that understates the size: inflating stops just past the stated size.
    lying = bytearray(data)
    cd = lying.rfind(b"PK\x01\x02")
    struct.pack_into("<I", lying, cd + 24, 100)
    with pytest.raises(ZipFormatError, match="is 101 bytes, the directory says 100"):
        _read_metadata(bytes(lying), "demo", "1.0")


@pytest.mark.parametrize(
    ("names", "project", "version", "expected"),
    [
        (["Foo_Bar-1.0.dist-info/METADATA"], "foo-bar", "1.0", "Foo_Bar-1.0.dist-info/METADATA"),
        (
            ["foo-1.0.dist-info/METADATA", "foo-1.0.data/x"],
            "FOO",
            "1.0.0",
            "foo-1.0.dist-info/METADATA",
        ),
        (
            ["other-2.0.dist-info/METADATA", "foo-1.0.dist-info/METADATA"],
            "foo",
            "1.0",
            "foo-1.0.dist-info/METADATA",
        ),
        (["foo-2.0.dist-info/METADATA"], "foo", "1.0", "no .dist-info/METADATA for foo 1.0"),
        (
            ["foo/METADATA", "x/foo-1.0.dist-info/METADATA"],
            "foo",
            "1.0",
            "no .dist-info/METADATA member",
        ),
    ],
)
def test_select_metadata_name(names: list[str], project: str, version: str, expected: str) -> None:
    if expected.startswith("no "):
        with pytest.raises(ZipFormatError, match=re.escape(expected)):
            select_metadata_name(names, project, version)
    else:
        assert select_metadata_name(names, project, version) == expected


def test_member_range_is_bounded_even_with_a_gap(tmp_path: Path) -> None:
    data = build_wheel(tmp_path, Dist("demo", "1.0")).read_bytes()
    directory, entries = _directory(data)
    metadata = next(e for e in entries if e.name.endswith("METADATA"))
    # Normally the range ends right before the next member's local header.
    following = min(e.header_offset for e in entries if e.header_offset > metadata.header_offset)
    assert zipranges.member_range(entries, metadata, directory) == (
        metadata.header_offset,
        following - 1,
    )
    # A directory claiming 10 MB of nothing after the member: the range stays member-sized.
    hostile = CentralDirectory(
        start=directory.start + 10_000_000, size=directory.size, entries=directory.entries
    )
    start, end = zipranges.member_range([metadata], metadata, hostile)
    assert start == metadata.header_offset
    assert end - start < 30 + len(metadata.raw_name) + 65536 + metadata.compressed_size
    # And a member that cannot fit before the next one is refused.
    squeezed = CentralDirectory(
        start=metadata.header_offset + 31, size=directory.size, entries=directory.entries
    )
    with pytest.raises(ZipFormatError, match="does not fit"):
        zipranges.member_range([metadata], metadata, squeezed)


def test_parse_metadata_checks_name_and_version() -> None:
    parsed = parse_metadata(
        METADATA, where="demo-1.0-py3-none-any.whl", project="Demo", version="1.0.0"
    )
    assert parsed.name == "demo"
    with pytest.raises(
        MetadataError, match=r"^x\.whl: metadata says demo 1.0 but the file name says demo 2.0$"
    ):
        parse_metadata(METADATA, where="x.whl", project="demo", version="2.0")
    bad = METADATA.replace(b"idna>=3", b"idna>=>3")
    with pytest.raises(MetadataError, match=r"^x\.whl: invalid metadata field requires-dist"):
        parse_metadata(bad, where="x.whl", project="demo", version="1.0")
    old = METADATA.replace(b"2.1", b"2.0")
    assert [
        str(r)
        for r in parse_metadata(old, where="x", project="demo", version="1.0").requires_dist or []
    ] == ["idna>=3"]


# --- a small HTTP server with switchable range behaviour -------------------------------------

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class ServerState:
    root: Path
    mode: str = "ranges"
    """``ranges``; ``no-ranges`` (200, whole body); ``wrong-range`` (206, Content-Range off by
    one); ``wrong-total`` (206, a total growing after the first request); ``long-range``
    (206, the right Content-Range and one byte more than it says)."""
    bytes_sent: int = 0
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _target(self) -> Path | None:
        path = self.server.state.root / self.path.split("?", 1)[0].lstrip("/")
        return path if path.is_file() else None

    def do_HEAD(self) -> None:
        state = self.server.state
        with state.lock:
            state.requests.append(("HEAD", self.path, None))
        target = self._target()
        self.send_response(200 if target else 404)
        self.send_header("Content-Length", str(target.stat().st_size if target else 0))
        self.end_headers()

    def do_GET(self) -> None:
        state = self.server.state
        header = self.headers.get("Range")
        with state.lock:
            state.requests.append(("GET", self.path, header))
        target = self._target()
        if target is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = target.read_bytes()
        match = _RANGE.match(header or "")
        if match is None or state.mode == "no-ranges":
            self.send_response(200)
            self._body(data, data)
            return
        first, last = match.groups()
        if first == "":
            start, end = max(0, len(data) - int(last)), len(data) - 1
        else:
            start, end = int(first), min(len(data) - 1, int(last) if last else len(data) - 1)
        if start > end:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        total = len(data)
        shown_start = start + 1 if state.mode == "wrong-range" else start
        if state.mode == "wrong-total":
            total += len(state.requests) - 1
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {shown_start}-{end}/{total}")
        extra = b"x" if state.mode == "long-range" else b""
        self._body(data[start : end + 1] + extra, data)

    def _body(self, body: bytes, _whole: bytes) -> None:
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        state = self.server.state
        try:
            for at in range(0, len(body), 16384):
                chunk = body[at : at + 16384]
                # Counted before writing, so the count is complete once the client has read.
                with state.lock:
                    state.bytes_sent += len(chunk)
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: ServerState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@dataclass
class Served:
    state: ServerState
    base: str

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    root = tmp_path / "www"
    root.mkdir()
    state = ServerState(root=root)
    server = _Server(state)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Served(state, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False
        yield s


def _publish(served: Served, dist: Dist, **kwargs: object) -> tuple[Path, str]:
    path = build_wheel(served.state.root, dist, **kwargs)  # type: ignore[arg-type]
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _fetch(
    session: requests.Session, served: Served, path: Path, sha: str | None, **kwargs: object
) -> FetchedMetadata:
    options: dict[str, object] = {"metadata_url": None, "metadata_sha256": None, "timeout": TIMEOUT}
    options.update(kwargs)
    return wheel_metadata(
        session,
        url=served.url(path.name),
        filename=path.name,
        sha256=sha,
        **options,  # type: ignore[arg-type]
    )


# --- fetch order -----------------------------------------------------------------------------


def test_range_path_reads_a_small_fraction_of_a_big_wheel(
    served: Served, session: requests.Session
) -> None:
    path, sha = _publish(served, Dist("big-one", "2.0", requires=["idna"], padding=2_000_000))
    size = path.stat().st_size
    got = _fetch(session, served, path, sha)
    assert got.source is MetadataSource.RANGE
    assert got.metadata.name == "big-one"
    assert [str(r) for r in got.metadata.requires_dist or []] == ["idna"]
    assert got.total_size == size
    assert got.sha256 is None and got.cached_path is None
    assert got.requests == len(served.state.requests) <= 2
    assert all(r[2] is not None for r in served.state.requests)
    assert got.bytes_received == served.state.bytes_sent < size // 20


def test_small_wheel_comes_whole_in_the_first_range(
    served: Served, session: requests.Session
) -> None:
    path, sha = _publish(served, Dist("tiny", "1.0"))
    got = _fetch(session, served, path, sha)
    assert (got.source, got.requests, got.sha256) == (MetadataSource.RANGE, 1, sha)
    assert got.bytes_received == path.stat().st_size


def test_small_wheel_with_wrong_hash_is_caught_on_the_range_path(
    served: Served, session: requests.Session
) -> None:
    path, _ = _publish(served, Dist("tiny", "1.0"))
    with pytest.raises(
        HashMismatch, match=rf"^{re.escape(served.url(path.name))}: sha256 mismatch"
    ):
        _fetch(session, served, path, "0" * 64)


def test_large_central_directory_over_http(served: Served, session: requests.Session) -> None:
    extra = {f"many/module_{i:04d}_with_a_long_name.py": b"" for i in range(1500)}
    path, sha = _publish(served, Dist("many", "1.0", padding=300_000), extra_members=extra)
    got = _fetch(session, served, path, sha)
    assert got.source is MetadataSource.RANGE
    assert got.requests in (2, 3)
    assert got.bytes_received < path.stat().st_size // 2


def test_server_ignoring_ranges_falls_back_to_whole_download(
    served: Served, session: requests.Session, tmp_path: Path
) -> None:
    served.state.mode = "no-ranges"
    path, sha = _publish(served, Dist("big-one", "2.0", padding=2_000_000))
    cache = ArtifactCache(tmp_path / "cache")
    got = _fetch(session, served, path, None, cache=cache)
    assert got.source is MetadataSource.WHOLE
    assert got.requests == 2
    # The 200 answer to the range request was dropped unread: only the whole download counts.
    assert got.bytes_received == path.stat().st_size
    assert got.sha256 == sha
    assert got.cached_path == cache.get(sha)
    assert got.cached_path is not None and got.cached_path.read_bytes() == path.read_bytes()
    assert sorted(p.name for p in cache.root.iterdir()) == ["sha256"]


def test_whole_download_without_cache_leaves_nothing_behind(
    served: Served, session: requests.Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.state.mode = "no-ranges"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    path, sha = _publish(served, Dist("whole", "1.0", padding=100_000))
    got = _fetch(session, served, path, sha)
    assert (got.source, got.sha256, got.cached_path) == (MetadataSource.WHOLE, sha, None)
    assert list(scratch.iterdir()) == []


def test_whole_download_with_wrong_hash_caches_nothing(
    served: Served, session: requests.Session, tmp_path: Path
) -> None:
    served.state.mode = "no-ranges"
    path, sha = _publish(served, Dist("whole", "1.0", padding=100_000))
    cache = ArtifactCache(tmp_path / "cache")
    with pytest.raises(HashMismatch, match=rf"expected {'1' * 64}, got {sha}$"):
        _fetch(session, served, path, "1" * 64, cache=cache)
    assert [p for p in cache.root.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("wrong-range", r"asked for bytes \d+-\d+, got Content-Range 'bytes \d+-\d+/\d+'$"),
        ("wrong-total", r"file size changed between requests"),
        ("long-range", r"response is larger than \d+ bytes$"),
    ],
)
def test_lying_range_server_is_an_error(
    served: Served, session: requests.Session, mode: str, message: str
) -> None:
    served.state.mode = mode
    path, sha = _publish(served, Dist("big-one", "2.0", padding=200_000))
    with pytest.raises(MetadataError, match=rf"^{re.escape(served.url(path.name))}: {message}"):
        _fetch(session, served, path, sha, tail_bytes=200)


def test_pep658_metadata_is_used_and_verified(served: Served, session: requests.Session) -> None:
    path, sha = _publish(served, Dist("meta", "1.0", requires=["idna"], padding=100_000))
    raw = zipfile.ZipFile(path).read("meta-1.0.dist-info/METADATA")
    (served.state.root / f"{path.name}.metadata").write_bytes(raw)
    md_url = served.url(f"{path.name}.metadata")
    got = _fetch(
        session,
        served,
        path,
        sha,
        metadata_url=md_url,
        metadata_sha256=hashlib.sha256(raw).hexdigest().upper(),
    )
    assert (got.source, got.requests, got.raw) == (MetadataSource.PEP658, 1, raw)
    assert got.bytes_received == len(raw)
    with pytest.raises(HashMismatch, match=rf"^{re.escape(md_url)}: sha256 mismatch"):
        _fetch(session, served, path, sha, metadata_url=md_url, metadata_sha256="2" * 64)


def test_pep658_not_found_falls_through_to_ranges(
    served: Served, session: requests.Session
) -> None:
    path, sha = _publish(served, Dist("meta", "1.0", padding=100_000))
    got = _fetch(
        session,
        served,
        path,
        sha,
        metadata_url=served.url("missing.metadata"),
        metadata_sha256="3" * 64,
    )
    assert got.source is MetadataSource.RANGE
    assert served.state.requests[0][1] == "/missing.metadata"


def test_pep658_metadata_for_another_version_is_refused(
    served: Served, session: requests.Session
) -> None:
    path, sha = _publish(served, Dist("meta", "1.0"))
    (served.state.root / "m.metadata").write_bytes(METADATA)
    with pytest.raises(
        MetadataError, match=r"metadata says demo 1.0 but the file name says meta 1.0$"
    ):
        _fetch(session, served, path, sha, metadata_url=served.url("m.metadata"))


def test_wheel_whose_metadata_disagrees_with_its_name(
    served: Served, session: requests.Session
) -> None:
    dist = Dist("named", "1.0")
    override = dist.metadata().replace("Version: 1.0", "Version: 1.1")
    path, sha = _publish(served, dist, metadata_override=override)
    with pytest.raises(MetadataError, match=rf"^{re.escape(path.name)}: metadata says named 1.1"):
        _fetch(session, served, path, sha)


def test_local_file_with_matching_hash_needs_no_request(
    served: Served, session: requests.Session, tmp_path: Path
) -> None:
    path, sha = _publish(served, Dist("local", "1.0"))
    other = build_wheel(tmp_path / "other", Dist("local", "1.0", requires=["x"]))
    got = _fetch(session, served, path, sha, local_files=[tmp_path / "absent.whl", other, path])
    assert (got.source, got.requests, got.sha256) == (MetadataSource.LOCAL, 0, sha)
    assert served.state.requests == []
    # A local file whose hash differs is not used.
    got = _fetch(session, served, path, sha, local_files=[other])
    assert got.source is MetadataSource.RANGE


def test_cache_entry_is_used_as_a_local_file(
    served: Served, session: requests.Session, tmp_path: Path
) -> None:
    path, sha = _publish(served, Dist("cached", "1.0"))
    cache = ArtifactCache(tmp_path / "cache")
    cache.add(path, sha)
    got = _fetch(session, served, path, sha, cache=cache)
    assert got.source is MetadataSource.LOCAL
    assert served.state.requests == []


def test_missing_wheel_is_a_network_error(served: Served, session: requests.Session) -> None:
    with pytest.raises(NetworkError, match=r"gone-1.0-py3-none-any.whl: HTTP 404"):
        wheel_metadata(
            session,
            url=served.url("gone-1.0-py3-none-any.whl"),
            filename="gone-1.0-py3-none-any.whl",
            sha256=None,
            metadata_url=None,
            metadata_sha256=None,
            timeout=TIMEOUT,
        )


def test_truncated_wheel_over_http(served: Served, session: requests.Session) -> None:
    path, _ = _publish(served, Dist("cut", "1.0", padding=100_000))
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(
        MetadataError, match=rf"^{re.escape(served.url(path.name))}: no end-of-central"
    ):
        _fetch(session, served, path, None)


def test_credentials_in_url_never_reach_the_message(
    served: Served, session: requests.Session
) -> None:
    url = served.url("gone-1.0-py3-none-any.whl").replace("http://", "http://user:s3cret@")
    with pytest.raises(NetworkError) as info:
        wheel_metadata(
            session,
            url=url,
            filename="gone-1.0-py3-none-any.whl",
            sha256=None,
            metadata_url=None,
            metadata_sha256=None,
            timeout=TIMEOUT,
        )
    assert "s3cret" not in str(info.value)


def test_head_size(served: Served, session: requests.Session) -> None:
    path, _ = _publish(served, Dist("sized", "1.0"))
    assert head_size(session, served.url(path.name), TIMEOUT) == path.stat().st_size
    assert head_size(session, served.url("nothing.whl"), TIMEOUT) is None


# --- sdists (PEP 643) ------------------------------------------------------------------------


def _sdist(served: Served, dist: Dist, dynamic: tuple[str, ...] = ()) -> tuple[Path, str]:
    path = build_sdist(served.state.root, dist, dynamic=dynamic)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_sdist_with_static_metadata(
    served: Served, session: requests.Session, tmp_path: Path
) -> None:
    dist = Dist("Static.Pkg", "3.0", requires=["idna"], metadata_version="2.2")
    path, sha = _sdist(served, dist, dynamic=("Summary",))
    cache = ArtifactCache(tmp_path / "cache")
    got = sdist_metadata(
        session,
        url=served.url(path.name),
        filename=path.name,
        sha256=None,
        cache=cache,
        timeout=TIMEOUT,
    )
    assert (got.source, got.sha256, got.requests) == (MetadataSource.SDIST, sha, 1)
    assert got.cached_path == cache.get(sha)
    assert [str(r) for r in got.metadata.requires_dist or []] == ["idna"]
    again = sdist_metadata(
        session,
        url=served.url(path.name),
        filename=path.name,
        sha256=sha,
        cache=cache,
        timeout=TIMEOUT,
    )
    assert (again.source, again.requests) == (MetadataSource.LOCAL, 0)


@pytest.mark.parametrize(
    ("metadata_version", "dynamic", "reason"),
    [
        ("2.1", (), "PKG-INFO Metadata-Version 2.1 < 2.2"),
        ("2.2", ("Requires-Dist",), "PKG-INFO marks requires-dist as Dynamic"),
        ("2.3", ("requires-python", "Summary"), "PKG-INFO marks requires-python as Dynamic"),
    ],
)
def test_sdist_needing_a_build(
    served: Served,
    session: requests.Session,
    metadata_version: str,
    dynamic: tuple[str, ...],
    reason: str,
) -> None:
    path, sha = _sdist(served, Dist("dyn", "1.0", metadata_version=metadata_version), dynamic)
    with pytest.raises(SdistNeedsBuild) as info:
        sdist_metadata(
            session, url=served.url(path.name), filename=path.name, sha256=sha, timeout=TIMEOUT
        )
    assert str(info.value) == (
        f"dyn-1.0.tar.gz: dyn 1.0 needs a build to learn its dependencies ({reason})"
    )
    assert (info.value.project, info.value.version, info.value.filename) == (
        "dyn",
        "1.0",
        path.name,
    )


def test_sdist_zip_and_name_mismatch(served: Served, session: requests.Session) -> None:
    pkg_info = Dist("zipped", "1.0", metadata_version="2.2").metadata()
    data = _zip({"zipped-1.0/PKG-INFO": pkg_info.encode(), "zipped-1.0/setup.py": b""})
    (served.state.root / "zipped-1.0.zip").write_bytes(data)
    got = sdist_metadata(
        session,
        url=served.url("zipped-1.0.zip"),
        filename="zipped-1.0.zip",
        sha256=None,
        timeout=TIMEOUT,
    )
    assert got.metadata.name == "zipped"
    (served.state.root / "zipped-2.0.zip").write_bytes(data)
    with pytest.raises(
        MetadataError,
        match=r"^zipped-2\.0\.zip: metadata says zipped 1\.0 but the file name says zipped 2\.0$",
    ):
        sdist_metadata(
            session,
            url=served.url("zipped-2.0.zip"),
            filename="zipped-2.0.zip",
            sha256=None,
            timeout=TIMEOUT,
        )


def test_empty_file_refused_by_range_server_then_read_whole(
    served: Served, session: requests.Session
) -> None:
    (served.state.root / "empty-1.0-py3-none-any.whl").write_bytes(b"")
    url = served.url("empty-1.0-py3-none-any.whl")
    with pytest.raises(MetadataError, match=rf"^{re.escape(url)}: no end-of-central-directory"):
        wheel_metadata(
            session,
            url=url,
            filename="empty-1.0-py3-none-any.whl",
            sha256=None,
            metadata_url=None,
            metadata_sha256=None,
            timeout=TIMEOUT,
        )
    assert [r[2] for r in served.state.requests] == ["bytes=-65536", None]


def test_upper_case_hash_finds_the_local_file(served: Served, session: requests.Session) -> None:
    path, sha = _publish(served, Dist("local", "1.0"))
    got = _fetch(session, served, path, sha.upper(), local_files=[path])
    assert (got.source, got.sha256) == (MetadataSource.LOCAL, sha)


HEADERS = (
    "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"
    "Description: old style\n        |\n        |second line\n"
    "Requires-Dist: six>=1 ; extra == 'x'\nProvides-Extra: x\n"
)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_metadata_is_read_from_its_header_fields_only(newline: str) -> None:
    body = "Long description\n\nName: not-a-field\nRequires-Dist: not-a-requirement\n"
    text = (HEADERS + "\n" + body).replace("\n", newline)
    head = header_fields(text)
    assert head == (HEADERS + "\n").replace("\n", newline)
    raw = text.encode()
    parsed = parse_metadata(raw, where="m", project="demo", version="1.0")
    assert parsed.requires_dist is not None
    assert [str(r) for r in parsed.requires_dist] == ['six>=1; extra == "x"']
    assert metadata_json(raw)["requires_dist"] == ["six>=1 ; extra == 'x'"]
    # No body at all, and a file that starts with the empty line (no header fields).
    assert header_fields(HEADERS) == HEADERS
    assert header_fields("\nName: x\n") == ""


@pytest.mark.parametrize(
    "extra",
    [
        "Summary: a\u2028Requires-Dist: evil\n",  # a line separator inside a value
        "Summary: a\x0cRequires-Dist: evil\n",  # a form feed inside a value
        "Classifier: a\n Requires-Dist: evil\n",  # a continuation line, not a field
        "Classifier: a\r Requires-Dist: evil\r",  # the same with CR line ends
        "Keywords: x\nRequires-Dist: extra-one ; extra == 'more'\n",
        "no field here\nRequires-Dist: after-the-header\n",  # the header ends at that line
    ],
)
def test_parse_metadata_reads_the_fields_the_email_parser_would(extra: str) -> None:
    from packaging.metadata import parse_email
    from packaging.requirements import Requirement

    text = f"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n{extra}Requires-Dist: idna\n"
    parsed = parse_metadata(text.encode(), where="m", project="demo", version="1.0")
    expected = [Requirement(r) for r in parse_email(text)[0].get("requires_dist", [])]
    assert [str(r) for r in parsed.requires_dist or []] == [str(r) for r in expected]
    assert all(r.name != "evil" for r in parsed.requires_dist or [])
