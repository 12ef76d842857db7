"""The one verified-copy primitive: caps, cancellation, fsync, and nothing unverified kept."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fetchplan._fs import (
    CHUNK_SIZE,
    SizeMismatch,
    TooLarge,
    copy_hashing,
    hash_file,
    read_chunks,
    staged,
    write_verified,
)
from fetchplan.errors import HashMismatch

DATA = os.urandom(3 * CHUNK_SIZE + 17)
SHA = hashlib.sha256(DATA).hexdigest()


class Stop(Exception):
    pass


def test_copy_hashes_writes_and_reports_progress() -> None:
    out = io.BytesIO()
    seen: list[int] = []
    md5 = hashlib.md5()
    hashed = copy_hashing(read_chunks(io.BytesIO(DATA)), out, progress=seen.append, also=[md5])
    assert (hashed.size, hashed.sha256) == (len(DATA), SHA)
    assert out.getvalue() == DATA
    assert sum(seen) == len(DATA) and len(seen) == 4
    assert md5.hexdigest() == hashlib.md5(DATA).hexdigest()


def test_a_hasher_fed_a_prefix_is_continued() -> None:
    prefix = copy_hashing(read_chunks(io.BytesIO(DATA), 1000))
    assert prefix.size == 1000
    rest = copy_hashing([DATA[1000:]], hasher=prefix.hasher)
    assert rest.size == len(DATA) - 1000 and rest.sha256 == SHA


def test_cap_exceeded_writes_nothing_past_it() -> None:
    out = io.BytesIO()
    with pytest.raises(TooLarge, match=f"more than {CHUNK_SIZE + 5} bytes") as caught:
        copy_hashing(read_chunks(io.BytesIO(DATA)), out, limit=CHUNK_SIZE + 5)
    assert caught.value.limit == CHUNK_SIZE + 5
    assert out.getvalue() == DATA[:CHUNK_SIZE]
    assert copy_hashing([DATA], limit=len(DATA)).size == len(DATA)  # the cap itself is allowed


def test_cancel_mid_copy_stops_before_the_next_chunk() -> None:
    out = io.BytesIO()
    calls = 0

    def cancel() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Stop

    with pytest.raises(Stop):
        copy_hashing(read_chunks(io.BytesIO(DATA)), out, cancel=cancel)
    assert out.getvalue() == DATA[: 2 * CHUNK_SIZE]


def test_fsync_is_called_on_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with (tmp_path / "out").open("wb") as out:
        copy_hashing([DATA], out)
        assert synced == []
        copy_hashing([DATA], out, fsync=True)
        assert synced == [out.fileno()]
    assert (tmp_path / "out").read_bytes() == DATA * 2
    synced.clear()
    write_verified([DATA], tmp_path / "final", sha256=SHA)
    assert len(synced) == 2  # the file, then its directory entry


def test_write_verified_puts_only_matching_bytes_at_the_final_name(tmp_path: Path) -> None:
    final = tmp_path / "sub" / "file.whl"
    hashed = write_verified(read_chunks(io.BytesIO(DATA)), final, sha256=SHA, size=len(DATA))
    assert (hashed.sha256, final.read_bytes()) == (SHA, DATA)
    assert [p.name for p in final.parent.iterdir()] == ["file.whl"]


def _chunks_then_fail() -> Iterator[bytes]:
    yield DATA[:100]
    raise OSError("connection reset")


@pytest.mark.parametrize(
    ("chunks", "kwargs", "error", "match"),
    [
        ([DATA], {"sha256": "0" * 64}, HashMismatch, "shown-name: sha256 mismatch"),
        ([DATA], {"sha256": SHA, "size": 5}, SizeMismatch, "shown-name: size"),
        ([DATA], {"sha256": SHA, "limit": 10}, TooLarge, "more than 10 bytes"),
        (_chunks_then_fail(), {"sha256": None}, OSError, "connection reset"),
    ],
)
def test_a_failed_verified_copy_leaves_no_file(
    tmp_path: Path,
    chunks: Iterator[bytes],
    kwargs: dict[str, object],
    error: type[Exception],
    match: str,
) -> None:
    final = tmp_path / "file.whl"
    with pytest.raises(error, match=match):
        write_verified(chunks, final, shown="shown-name", **kwargs)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_a_failed_copy_over_an_old_file_keeps_the_old_file(tmp_path: Path) -> None:
    final = tmp_path / "file.whl"
    final.write_bytes(b"old")
    with pytest.raises(HashMismatch):
        write_verified([DATA], final, sha256="0" * 64)
    assert [p.name for p in tmp_path.iterdir()] == ["file.whl"]
    assert final.read_bytes() == b"old"


def test_hash_file_of_a_prefix_and_of_the_whole(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(DATA)
    assert (hash_file(path).size, hash_file(path).sha256) == (len(DATA), SHA)
    head = hash_file(path, size=10)
    assert (head.size, head.sha256) == (10, hashlib.sha256(DATA[:10]).hexdigest())
    assert hash_file(path, size=len(DATA) + 100).size == len(DATA)


def test_staged_file_is_removed_unless_renamed_away(tmp_path: Path) -> None:
    with staged(tmp_path, prefix=".x.") as temp:
        temp.out.write(b"abc")
    assert list(tmp_path.iterdir()) == []
    with staged(tmp_path, prefix=".x.") as temp:
        temp.out.write(b"abc")
        temp.out.flush()
        temp.path.rename(tmp_path / "kept")
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]
