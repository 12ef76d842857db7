"""The verified manifest (format v1): the contract between fetch and install."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from packaging.utils import NormalizedName, canonicalize_name

from fetchplan.schemas import described, dump_document, load_document
from fetchplan.schemas.plan import Creator

__all__ = [
    "FORMAT",
    "VERSION",
    "Manifest",
    "ManifestArtifact",
    "PlanRef",
    "Shard",
    "load_manifest",
    "write_manifest",
]

FORMAT = "fetchplan.manifest"
VERSION = 1

Source = Literal["downloaded", "resumed", "existing", "cache", "mirror"]


@described("manifest", "properties/plan")
@dataclass(frozen=True, kw_only=True, slots=True)
class PlanRef:
    """The plan a manifest verified files of, by digest and path."""

    sha256: str
    path: str

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "path": self.path}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlanRef:
        return cls(sha256=d["sha256"], path=d["path"])


@described("manifest", "properties/shard")
@dataclass(frozen=True, kw_only=True, slots=True)
class Shard:
    """The shard of a plan one run fetched."""

    index: int
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "count": self.count}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Shard | None:
        return None if d is None else cls(index=d["index"], count=d["count"])


@described("manifest", "properties/artifacts/items")
@dataclass(frozen=True, kw_only=True, slots=True)
class ManifestArtifact:
    """One verified file in a fetch's destination."""

    name: NormalizedName
    version: str
    filename: str
    path: str
    sha256: str
    size: int
    url: str
    source: Source
    verified_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "filename": self.filename,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "url": self.url,
            "source": self.source,
            "verified_at": self.verified_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ManifestArtifact:
        return cls(
            name=canonicalize_name(d["name"]),
            version=d["version"],
            filename=d["filename"],
            path=d["path"],
            sha256=d["sha256"],
            size=d["size"],
            url=d["url"],
            source=d["source"],
            verified_at=d["verified_at"],
        )


@described("manifest")
@dataclass(frozen=True, kw_only=True, slots=True)
class Manifest:
    """The files of a plan that a fetch verified: what ``install`` consumes."""

    created: str
    creator: Creator = field(default_factory=Creator)
    plan: PlanRef
    shard: Shard | None = None
    artifacts: tuple[ManifestArtifact, ...]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "created": self.created,
            "creator": self.creator.to_dict(),
            "plan": self.plan.to_dict(),
        }
        if self.shard is not None:
            d["shard"] = self.shard.to_dict()
        d["artifacts"] = [a.to_dict() for a in self.artifacts]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        return cls(
            created=d["created"],
            creator=Creator.from_dict(d["creator"]),
            plan=PlanRef.from_dict(d["plan"]),
            shard=Shard.from_dict(d.get("shard")),
            artifacts=tuple(ManifestArtifact.from_dict(a) for a in d["artifacts"]),
        )


def load_manifest(path: Path) -> Manifest:
    """Read and schema-validate a manifest."""
    return Manifest.from_dict(load_document(path, "manifest"))


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Validate and atomically write a manifest."""
    dump_document(path, manifest.to_dict(), "manifest")
