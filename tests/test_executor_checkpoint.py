"""The checkpoint journal survives torn writes: a bad record is ignored, never trusted."""

from __future__ import annotations

import threading
from pathlib import Path

from fetchplan.executor.checkpoint import ArtifactState, CheckpointStore, parse_journal
from fetchplan.executor.protocol import Validator

SHA = "b" * 64


def _state(name: str, nbytes: int, state: str = "partial") -> ArtifactState:
    return ArtifactState(
        artifact=name,
        state=state,  # type: ignore[arg-type]
        sha256=SHA,
        size=1000,
        url=f"http://127.0.0.1:1/{name}",
        bytes=nbytes,
        validator=Validator("etag", '"x"'),
    )


def test_last_record_wins_and_survives_reopen(tmp_path: Path) -> None:
    with CheckpointStore(tmp_path) as store:
        store.record(_state("a.whl", 10))
        store.record(_state("a.whl", 20))
        store.record(_state("b.whl", 1000, "verified"), durable=True)
    with CheckpointStore(tmp_path) as store:
        a, b = store.get("a.whl"), store.get("b.whl")
        assert a is not None and a.bytes == 20 and a.validator == Validator("etag", '"x"')
        assert b is not None and b.state == "verified"
    # Reopening compacted the journal to one line per artifact.
    assert len((tmp_path / "state.jsonl").read_bytes().splitlines()) == 2


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    with CheckpointStore(tmp_path) as store:
        store.record(_state("a.whl", 10))
        store.record(_state("a.whl", 20))
    journal = tmp_path / "state.jsonl"
    data = journal.read_bytes()
    journal.write_bytes(data[:-15])  # the kill hit in the middle of the last write
    states, ignored = parse_journal(journal.read_bytes())
    assert ignored == 1
    assert states["a.whl"].bytes == 10


def test_flipped_byte_fails_the_checksum(tmp_path: Path) -> None:
    with CheckpointStore(tmp_path) as store:
        store.record(_state("a.whl", 10))
        store.record(_state("a.whl", 20))
    journal = tmp_path / "state.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[-1] = lines[-1].replace(b'"bytes":20', b'"bytes":90')
    journal.write_bytes(b"".join(lines))
    states, ignored = parse_journal(journal.read_bytes())
    assert (ignored, states["a.whl"].bytes) == (1, 10)


def test_garbage_and_schema_violations_are_ignored() -> None:
    data = b'{"v":1}\nnot json\n[1,2]\n\n'
    states, ignored = parse_journal(data)
    assert states == {}
    assert ignored == 3


def test_threads_append_whole_lines(tmp_path: Path) -> None:
    with CheckpointStore(tmp_path) as store:

        def work(n: int) -> None:
            for i in range(50):
                store.record(_state(f"f{n}.whl", i))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    states, ignored = parse_journal((tmp_path / "state.jsonl").read_bytes())
    assert ignored == 0
    assert {s.bytes for s in states.values()} == {49}
    assert len(states) == 8
