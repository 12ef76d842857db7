"""What a run did: the result object, its closing summary, and the ``--timings`` document.

The timings document (schema ``timings.schema.json``) carries the summary, the same per host,
and per file its start and end (seconds since the run began), worker, connections (local
ports, so keep-alive reuse shows), tries and phases -- enough to draw a waterfall.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fetchplan.executor.verified import FileTiming, Verified
from fetchplan.schemas import dump_document

__all__ = ["Failure", "FetchResult", "write_timings"]

SOURCES = ("downloaded", "resumed", "cache", "existing", "mirror")


@dataclass(frozen=True, slots=True)
class Failure:
    """An artifact the run could not obtain, and why."""

    destination: str
    name: str
    version: str
    url: str
    reason: str
    timing: FileTiming


@dataclass(frozen=True, kw_only=True, slots=True)
class FetchResult:
    """The outcome of executing a plan (or one shard of it)."""

    plan_sha256: str
    plan_path: Path
    destination: Path
    manifest_path: Path | None
    verified: tuple[Verified, ...]
    failures: tuple[Failure, ...]
    skipped: int
    """Artifacts left to other shards."""
    interrupted: bool
    started_at: str
    wall_seconds: float
    jobs: int
    per_host: int
    shard: tuple[int, int] | None = None

    @property
    def ok(self) -> bool:
        """Every artifact of this run's share is verified in place."""
        return not self.failures and not self.interrupted

    @property
    def network_bytes(self) -> int:
        timings = [v.timing for v in self.verified] + [f.timing for f in self.failures]
        return sum(t.network_bytes for t in timings)

    @property
    def resumed_bytes(self) -> int:
        """Bytes of partials left by earlier runs that this run continued instead of fetching."""
        return sum(v.timing.resumed_bytes for v in self.verified)

    @property
    def retries(self) -> int:
        timings = [v.timing for v in self.verified] + [f.timing for f in self.failures]
        return sum(t.retries for t in timings)

    def sources(self) -> dict[str, int]:
        """Files per way of obtaining them, plus ``failed``."""
        counts: Counter[str] = Counter(v.source for v in self.verified)
        out = {source: counts[source] for source in SOURCES}
        out["failed"] = len(self.failures)
        return out

    def summary(self) -> dict[str, Any]:
        """Bytes, wall time, throughput, files per source and retries, overall and per host."""
        return {
            "bytes": sum(v.size for v in self.verified),
            "network_bytes": self.network_bytes,
            "wall_seconds": round(self.wall_seconds, 6),
            "throughput": _rate(self.network_bytes, self.wall_seconds),
            "files": self.sources(),
            "retries": self.retries,
            "hosts": _per_host(self),
        }

    def timings_document(self) -> dict[str, Any]:
        """The ``--timings`` JSON: the summary plus one record per file."""
        records = [v.timing for v in self.verified] + [f.timing for f in self.failures]
        records.sort(key=lambda t: (t.start, t.destination))
        return {
            "format": "fetchplan.fetch-timings",
            "version": 1,
            "plan": {"sha256": self.plan_sha256, "path": str(self.plan_path)},
            "destination": str(self.destination),
            "shard": None
            if self.shard is None
            else {"index": self.shard[0], "count": self.shard[1]},
            "started": self.started_at,
            "jobs": self.jobs,
            "per_host": self.per_host,
            "interrupted": self.interrupted,
            **self.summary(),
            "artifacts": [t.to_dict() for t in records],
            "failures": [{"destination": f.destination, "reason": f.reason} for f in self.failures],
        }


def _rate(nbytes: int, seconds: float) -> float:
    return round(nbytes / seconds, 3) if seconds > 0 else 0.0


def _per_host(result: FetchResult) -> dict[str, Any]:
    hosts: dict[str, dict[str, Any]] = {}
    spans: dict[str, list[float]] = {}
    entries: list[tuple[FileTiming, str]] = [(v.timing, v.source) for v in result.verified]
    entries += [(f.timing, "failed") for f in result.failures]
    for timing, source in entries:
        host = hosts.setdefault(
            timing.host,
            {
                "bytes": 0,
                "network_bytes": 0,
                "retries": 0,
                "files": dict.fromkeys([*SOURCES, "failed"], 0),
            },
        )
        host["files"][source] += 1
        host["network_bytes"] += timing.network_bytes
        host["retries"] += timing.retries
        if source != "failed":
            host["bytes"] += timing.size or 0
        span = spans.setdefault(timing.host, [timing.start, timing.end])
        span[0] = min(span[0], timing.start)
        span[1] = max(span[1], timing.end)
    for name, host in hosts.items():
        start, end = spans[name]
        host["seconds"] = round(end - start, 6)
        host["throughput"] = _rate(host["network_bytes"], end - start)
    return dict(sorted(hosts.items()))


def write_timings(path: Path, result: FetchResult) -> None:
    """Validate and atomically write the timings document of ``result`` to ``path``."""
    dump_document(path, result.timings_document(), "fetch-timings", output=True)
