"""What obtaining an artifact leaves: the verified file, and how obtaining it went.

Values only, so that what reads results (the manifest, the summary, a reporter) depends on
neither the workers' context nor the download.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fetchplan.executor.checkpoint import ObtainedFrom
from fetchplan.schemas.plan import Artifact

__all__ = ["FileTiming", "Verified"]


@dataclass(slots=True)
class FileTiming:
    """When and how one artifact was obtained (seconds since the run started)."""

    destination: str
    host: str
    size: int | None
    start: float = 0.0
    end: float = 0.0
    worker: str = ""
    connections: list[int] = field(default_factory=list)
    phases: list[tuple[str, float, float]] = field(default_factory=list)
    tries: int = 0
    retries: int = 0
    network_bytes: int = 0
    resumed_bytes: int = 0
    """Bytes of a partial an earlier run left that this one continued (not in ``to_dict``)."""
    source: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "host": self.host,
            "size": self.size,
            "source": self.source,
            "start": round(self.start, 6),
            "end": round(self.end, 6),
            "worker": self.worker,
            "connections": list(self.connections),
            "tries": self.tries,
            "retries": self.retries,
            "network_bytes": self.network_bytes,
            "phases": [
                {"name": name, "start": round(s, 6), "end": round(e, 6)}
                for name, s, e in self.phases
            ],
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Verified:
    """An artifact whose file at ``path`` matched the plan when ``verified_at``."""

    artifact: Artifact
    path: Path
    sha256: str
    size: int
    source: ObtainedFrom
    verified_at: str
    timing: FileTiming
    fetched_from: str | None = None
    """The URL the bytes came from when it was not the plan's (a mirror); no credentials."""
