"""The executor's memory between runs: an append-only journal with a checksum per record.

``<dest>/.fetchplan/state.jsonl`` holds one JSON record per line (schema
``checkpoint.schema.json``): per artifact its state, the bytes on disk and the strong
validator of the response those bytes came from. A line is one ``write`` to a file opened for
appending, so a kill leaves at most one torn last line; its CRC-32 (or its JSON) no longer
checks out and :func:`parse_journal` ignores it. Opening the store compacts the journal to the
last valid record per artifact, written atomically. The caller holds the destination lock, so
only one process appends at a time; threads share one store through its lock.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import zlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from fetchplan._fs import atomic_write_bytes
from fetchplan._parse import load_json
from fetchplan.errors import FileFormatError
from fetchplan.executor.protocol import Validator
from fetchplan.schemas import canonical_json, described, validate

if TYPE_CHECKING:
    from fetchplan.schemas.plan import Artifact

__all__ = ["ArtifactState", "CheckpointStore", "State", "parse_journal", "utc_now"]

log = logging.getLogger(__name__)

State = Literal["partial", "verified", "failed", "discarded"]
ObtainedFrom = Literal["downloaded", "resumed", "existing", "cache", "mirror"]


def utc_now() -> str:
    """The current UTC time as RFC 3339 with a ``Z``, to the microsecond."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@described("checkpoint")
@dataclass(frozen=True, kw_only=True, slots=True)
class ArtifactState:
    """One journal record: what the executor knows about one destination file."""

    artifact: str
    state: State
    sha256: str | None
    size: int | None
    url: str
    bytes: int = 0
    validator: Validator | None = None
    source: ObtainedFrom | None = None
    reason: str | None = None
    time: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "artifact": self.artifact,
            "state": self.state,
            "sha256": self.sha256,
            "size": self.size,
            "url": self.url,
            "bytes": self.bytes,
            "validator": None
            if self.validator is None
            else {"kind": self.validator.kind, "value": self.validator.value},
            "source": self.source,
            "reason": self.reason,
            "time": self.time or utc_now(),
        }

    @classmethod
    def of(
        cls,
        artifact: Artifact,
        state: State,
        *,
        received: int = 0,
        validator: Validator | None = None,
        source: ObtainedFrom | None = None,
        reason: str | None = None,
    ) -> ArtifactState:
        """The record of ``artifact`` in ``state`` with ``received`` bytes on disk.

        Destination, sha256, size and URL come from the plan's artifact.
        """
        return cls(
            artifact=artifact.destination,
            state=state,
            sha256=artifact.sha256,
            size=artifact.size,
            url=artifact.url,
            bytes=received,
            validator=validator,
            source=source,
            reason=reason,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArtifactState:
        validator = d["validator"]
        return cls(
            artifact=d["artifact"],
            state=d["state"],
            sha256=d["sha256"],
            size=d["size"],
            url=d["url"],
            bytes=d["bytes"],
            validator=None
            if validator is None
            else Validator(validator["kind"], validator["value"]),
            source=d["source"],
            reason=d["reason"],
            time=d["time"],
        )

    def matches(self, sha256: str | None, size: int | None, url: str) -> bool:
        """Whether this record is about the same file the plan now asks for."""
        if sha256 is not None or self.sha256 is not None:
            return self.sha256 == sha256 and self.size == size
        return self.url == url and self.size == size


def _crc(record: dict[str, Any]) -> str:
    return f"{zlib.crc32(canonical_json(record)) & 0xFFFFFFFF:08x}"


def encode_record(state: ArtifactState) -> bytes:
    """One journal line: the record with its CRC-32, newline-terminated."""
    record = state.to_dict()
    record["crc32"] = _crc(record)
    return json.dumps(record, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"


def parse_journal(
    data: bytes, filename: str = "state.jsonl"
) -> tuple[dict[str, ArtifactState], int]:
    """The last valid record per artifact, and how many lines were ignored as torn or bad."""
    states: dict[str, ArtifactState] = {}
    ignored = 0
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if number == len(lines):
            # No newline after it: the write that made it never finished.
            ignored += 1
            continue
        try:
            record = load_json(line, f"{filename}:{number}")
            if not isinstance(record, dict):
                raise ValueError("not an object")
            validate(record, "checkpoint", f"{filename}:{number}")
            body = {k: v for k, v in record.items() if k != "crc32"}
            if _crc(body) != record["crc32"]:
                raise ValueError("checksum mismatch")
        except (ValueError, FileFormatError) as exc:
            ignored += 1
            log.debug("%s:%d: ignoring record: %s", filename, number, exc)
            continue
        state = ArtifactState.from_dict(record)
        states[state.artifact] = state
    return states, ignored


class CheckpointStore:
    """The journal of one destination; thread-safe; use as a context manager."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "state.jsonl"
        state_dir.mkdir(parents=True, exist_ok=True)
        data = self.path.read_bytes() if self.path.exists() else b""
        self._states, ignored = parse_journal(data, str(self.path))
        if ignored:
            log.warning("%s: ignored %d torn or corrupt record(s)", self.path, ignored)
        atomic_write_bytes(self.path, b"".join(encode_record(s) for s in self._states.values()))
        self._lock = threading.Lock()
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def get(self, artifact: str) -> ArtifactState | None:
        """The last recorded state of ``artifact``."""
        with self._lock:
            return self._states.get(artifact)

    def record(self, state: ArtifactState, *, durable: bool = False) -> ArtifactState:
        """Append ``state`` (stamped with the current time); fsync when ``durable``."""
        stamped = replace(state, time=utc_now())
        line = encode_record(stamped)
        with self._lock:
            if self._fd is None:
                raise RuntimeError("checkpoint store is closed")
            os.write(self._fd, line)
            if durable:
                os.fsync(self._fd)
            self._states[stamped.artifact] = stamped
        return stamped

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> CheckpointStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
