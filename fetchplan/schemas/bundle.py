"""The bundle description (format v1): ``bundle.json`` at the root of a bundle."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fetchplan.schemas import dump_document, load_document
from fetchplan.schemas.plan import Creator

__all__ = [
    "FORMAT",
    "VERSION",
    "BuiltRef",
    "Bundle",
    "BundleIndex",
    "FileRef",
    "ProvenanceRef",
    "load_bundle",
    "write_bundle",
]

FORMAT = "fetchplan.bundle"
VERSION = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class FileRef:
    """A file of the bundle (path relative to its root) and a sha256 that pins it."""

    path: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileRef:
        return cls(path=d["path"], sha256=d["sha256"])


@dataclass(frozen=True, kw_only=True, slots=True)
class ProvenanceRef:
    """The PEP 740 provenance object of the plan's artifact ``filename``, carried in the
    bundle at ``path``."""

    filename: str
    path: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "path": self.path, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProvenanceRef:
        return cls(filename=d["filename"], path=d["path"], sha256=d["sha256"])


@dataclass(frozen=True, kw_only=True, slots=True)
class BuiltRef:
    """A wheel built, when the bundle was made, from the plan's source-tree archive
    ``artifact`` (whose sha256 was then ``source_sha256``), carried at ``path``."""

    artifact: str
    filename: str
    path: str
    sha256: str
    size: int
    source_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "filename": self.filename,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "source_sha256": self.source_sha256,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BuiltRef:
        return cls(
            artifact=d["artifact"],
            filename=d["filename"],
            path=d["path"],
            sha256=d["sha256"],
            size=d["size"],
            source_sha256=d["source_sha256"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class BundleIndex:
    path: str
    projects: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "projects": list(self.projects)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BundleIndex:
        return cls(path=d["path"], projects=tuple(d["projects"]))


@dataclass(frozen=True, kw_only=True, slots=True)
class Bundle:
    """What a bundle holds. ``plan.sha256`` is the plan's digest (canonical JSON),
    ``manifest.sha256`` the digest of the manifest file's bytes."""

    created: str
    creator: Creator = field(default_factory=Creator)
    plan: FileRef
    manifest: FileRef
    index: BundleIndex
    readme: str
    provenance: tuple[ProvenanceRef, ...] = ()
    built: tuple[BuiltRef, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "created": self.created,
            "creator": self.creator.to_dict(),
            "plan": self.plan.to_dict(),
            "manifest": self.manifest.to_dict(),
            "index": self.index.to_dict(),
            "readme": self.readme,
            **({"provenance": [p.to_dict() for p in self.provenance]} if self.provenance else {}),
            **({"built": [b.to_dict() for b in self.built]} if self.built else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Bundle:
        return cls(
            created=d["created"],
            creator=Creator.from_dict(d["creator"]),
            plan=FileRef.from_dict(d["plan"]),
            manifest=FileRef.from_dict(d["manifest"]),
            index=BundleIndex.from_dict(d["index"]),
            readme=d["readme"],
            provenance=tuple(ProvenanceRef.from_dict(p) for p in d.get("provenance", ())),
            built=tuple(BuiltRef.from_dict(b) for b in d.get("built", ())),
        )


def load_bundle(path: Path) -> Bundle:
    """Read and schema-validate a ``bundle.json``."""
    return Bundle.from_dict(load_document(path, "bundle"))


def write_bundle(path: Path, bundle: Bundle) -> None:
    """Validate and atomically write a ``bundle.json``."""
    dump_document(path, bundle.to_dict(), "bundle")
