"""The download plan (format v1) as frozen dataclasses: the contract between plan and fetch.

``Plan.from_dict`` expects a document that already passed the JSON Schema (see
:func:`load_plan`); ``Plan.to_dict`` produces one that passes it. Field order in ``to_dict`` is
fixed so the same plan always serialises to the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from fetchplan import __version__
from fetchplan._parse import long_number
from fetchplan.errors import FieldProblem, FileFormatError
from fetchplan.schemas import described, dump_document, load_document

__all__ = [
    "BUILT_KINDS",
    "FORMAT",
    "SOURCE_TREE_KINDS",
    "VERSION",
    "Artifact",
    "AttestationBundle",
    "Creator",
    "Dependency",
    "IndexRef",
    "Inputs",
    "Plan",
    "ProjectStatus",
    "SatisfiedBy",
    "StatusName",
    "Target",
    "VcsInfo",
    "load_plan",
    "plan_problems",
    "url_problem",
    "version_problem",
    "write_plan",
]

FORMAT = "fetchplan.plan"
VERSION = 1

ArtifactKind = Literal["wheel", "sdist", "directory", "vcs"]
HashSource = Literal["index", "url", "requirements", "computed"]

SOURCE_TREE_KINDS: frozenset[str] = frozenset({"directory", "vcs"})
"""Kinds whose destination file is the archive of a source tree the executor makes."""
BUILT_KINDS: frozenset[str] = frozenset({"sdist", "directory", "vcs"})
"""Kinds ``install`` builds into a wheel (PEP 517) before installing."""
SatisfiedSource = Literal["destination", "cache"]
IndexKind = Literal["index", "find-links"]
StatusName = Literal["archived", "quarantined", "deprecated"]


@described("plan", "$defs/creator")
@dataclass(frozen=True, kw_only=True, slots=True)
class Creator:
    """The program that wrote a plan or manifest."""

    name: str = "fetchplan"
    version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Creator:
        return cls(name=d["name"], version=d["version"])


@described("plan", "properties/inputs")
@dataclass(frozen=True, kw_only=True, slots=True)
class Inputs:
    """What a plan was made from: requirements, constraints, overrides and options."""

    requirements: tuple[str, ...]
    constraints: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "requirements": list(self.requirements),
            "constraints": list(self.constraints),
            "options": dict(self.options),
        }
        if self.overrides:
            d["overrides"] = list(self.overrides)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Inputs:
        return cls(
            requirements=tuple(d["requirements"]),
            constraints=tuple(d["constraints"]),
            options=dict(d["options"]),
            overrides=tuple(d.get("overrides", ())),
        )


@described("plan", "$defs/target")
@dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    """An environment the plan serves: marker values and supported tags, best tag first."""

    name: str
    markers: dict[str, str]
    tags: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "markers": dict(self.markers), "tags": list(self.tags)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Target:
        return cls(name=d["name"], markers=dict(d["markers"]), tags=tuple(d["tags"]))


@described("plan", "properties/indexes/items")
@dataclass(frozen=True, kw_only=True, slots=True)
class IndexRef:
    """An index or find-links location the planner consulted."""

    url: str
    kind: IndexKind = "index"

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexRef:
        return cls(url=d["url"], kind=d["kind"])


@described("plan", "$defs/dependency")
@dataclass(frozen=True, kw_only=True, slots=True)
class Dependency:
    """An edge of the plan's graph: a planned project and the requirement naming it."""

    name: NormalizedName
    requirement: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "requirement": self.requirement}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Dependency:
        return cls(name=canonicalize_name(d["name"]), requirement=d["requirement"])


@described("plan", "$defs/satisfied_by/oneOf/1")
@dataclass(frozen=True, kw_only=True, slots=True)
class SatisfiedBy:
    """A local file whose hash was checked when planning. A hint: the executor re-checks."""

    source: SatisfiedSource
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SatisfiedBy | None:
        if d is None:
            return None
        return cls(source=d["source"], sha256=d["sha256"])


@described("plan", "$defs/vcs")
@dataclass(frozen=True, kw_only=True, slots=True)
class VcsInfo:
    """A VCS requirement's commit, as pylock's ``[packages.vcs]`` table records it."""

    type: Literal["git"]
    url: str
    commit_id: str
    requested_revision: str | None = None
    subdirectory: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "url": self.url}
        if self.requested_revision is not None:
            d["requested_revision"] = self.requested_revision
        d["commit_id"] = self.commit_id
        if self.subdirectory is not None:
            d["subdirectory"] = self.subdirectory
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> VcsInfo | None:
        if d is None:
            return None
        return cls(
            type=d["type"],
            url=d["url"],
            commit_id=d["commit_id"],
            requested_revision=d.get("requested_revision"),
            subdirectory=d.get("subdirectory"),
        )


@described("plan", "$defs/attestation")
@dataclass(frozen=True, kw_only=True, slots=True)
class AttestationBundle:
    """One bundle of a file's PEP 740 provenance, every attestation in it verified: the
    publisher its certificates were checked against and the attested predicate types."""

    publisher: dict[str, str | None]
    predicate_types: tuple[str, ...]

    @property
    def identity(self) -> str:
        """The publisher as a policy names it: ``github:org/repo:workflow.yml``,
        ``gitlab:group/project:path.yml``, ``google:email``; other kinds by every field."""
        kind = (self.publisher.get("kind") or "").lower()
        repository, workflow = self.publisher.get("repository"), self.publisher.get("workflow")
        if repository:
            return f"{kind}:{repository}" + (f":{workflow}" if workflow else "")
        email = self.publisher.get("email")
        if email:
            return f"{kind}:{email}"
        rest = ",".join(
            f"{key}={value}"
            for key, value in sorted(self.publisher.items())
            if key != "kind" and value is not None
        )
        return f"{kind}:{rest}"

    def to_dict(self) -> dict[str, Any]:
        return {"publisher": dict(self.publisher), "predicate_types": list(self.predicate_types)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttestationBundle:
        return cls(publisher=dict(d["publisher"]), predicate_types=tuple(d["predicate_types"]))


@described("plan", "$defs/project_status")
@dataclass(frozen=True, kw_only=True, slots=True)
class ProjectStatus:
    """A PEP 792 project status other than ``active``, as the index page stated it."""

    status: StatusName
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProjectStatus:
        return cls(status=d["status"], reason=d["reason"])


@described("plan", "$defs/artifact")
@dataclass(frozen=True, kw_only=True, slots=True)
class Artifact:
    """One file of a plan: what it is, where it comes from, how it is verified."""

    name: NormalizedName
    version: str
    kind: ArtifactKind
    filename: str
    url: str
    index: str
    hashes: dict[str, str]
    hash_source: HashSource | None
    size: int | None
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    upload_time: str | None = None
    provenance: str | None = None
    attestations: tuple[AttestationBundle, ...] | None = None
    project_status: ProjectStatus | None = None
    dependencies: tuple[Dependency, ...] = ()
    requested: bool = False
    extras: tuple[str, ...] = ()
    build_dependency: bool = False
    targets: tuple[str, ...] | None = None
    build_targets: tuple[str, ...] | None = None
    destination: str
    satisfied_by: SatisfiedBy | None = None
    metadata: dict[str, Any] | None = None
    direct: bool = False
    editable: bool = False
    path: str | None = None
    exclude: tuple[str, ...] = ()
    vcs: VcsInfo | None = None
    subdirectory: str | None = None
    """Where the project lies in an sdist archive (below its one top-level directory when it
    has one) or in a project directory: the ``#subdirectory=`` fragment. A VCS commit's is
    ``vcs.subdirectory``."""

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("sha256")

    def local_path(self, plan_dir: Path) -> Path | None:
        """Where a local archive or directory is, for a plan in ``plan_dir``; else None.

        ``path`` is taken against ``plan_dir``; when nothing is there (the plan was copied,
        into a fetch's destination for one), the absolute path of the ``file://`` URL.
        """
        if self.path is None:
            return None
        path = Path(self.path)
        if path.is_absolute():
            return path
        if (plan_dir / path).exists() or not self.url.startswith("file:"):
            return plan_dir / path
        # urllib.request (with http.client and ssl) only for a copied plan's file: URL.
        from urllib.request import url2pathname

        return Path(url2pathname(urlsplit(self.url).path))

    def project_dir(self, plan_dir: Path) -> Path | None:
        """A directory artifact's project: :meth:`local_path` joined with ``subdirectory``."""
        path = self.local_path(plan_dir)
        if path is None or self.subdirectory is None:
            return path
        return path.joinpath(*self.subdirectory.split("/"))

    @property
    def parsed_version(self) -> Version:
        return Version(self.version)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "filename": self.filename,
            "url": self.url,
            "index": self.index,
            "hashes": dict(sorted(self.hashes.items())),
            "hash_source": self.hash_source,
            "size": self.size,
            "requires_python": self.requires_python,
            "yanked": self.yanked,
            "yanked_reason": self.yanked_reason,
            "upload_time": self.upload_time,
            "provenance": self.provenance,
        }
        if self.attestations is not None:
            d["attestations"] = [bundle.to_dict() for bundle in self.attestations]
        if self.project_status is not None:
            d["project_status"] = self.project_status.to_dict()
        d |= {
            "dependencies": [dep.to_dict() for dep in self.dependencies],
            "requested": self.requested,
            "extras": list(self.extras),
            "build_dependency": self.build_dependency,
        }
        if self.targets is not None:
            d["targets"] = list(self.targets)
        if self.build_targets is not None:
            d["build_targets"] = list(self.build_targets)
        d["destination"] = self.destination
        d["satisfied_by"] = None if self.satisfied_by is None else self.satisfied_by.to_dict()
        if self.metadata is not None:
            d["metadata"] = dict(self.metadata)
        if self.direct:
            d["direct"] = True
        if self.editable:
            d["editable"] = True
        if self.path is not None:
            d["path"] = self.path
        if self.exclude:
            d["exclude"] = list(self.exclude)
        if self.vcs is not None:
            d["vcs"] = self.vcs.to_dict()
        if self.subdirectory is not None:
            d["subdirectory"] = self.subdirectory
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Artifact:
        targets = d.get("targets")
        build_targets = d.get("build_targets")
        attestations = d.get("attestations")
        status = d.get("project_status")
        return cls(
            name=canonicalize_name(d["name"]),
            version=d["version"],
            kind=d["kind"],
            filename=d["filename"],
            url=d["url"],
            index=d["index"],
            hashes=dict(d["hashes"]),
            hash_source=d["hash_source"],
            size=d["size"],
            requires_python=d["requires_python"],
            yanked=d["yanked"],
            yanked_reason=d.get("yanked_reason"),
            upload_time=d.get("upload_time"),
            provenance=d.get("provenance"),
            attestations=None
            if attestations is None
            else tuple(AttestationBundle.from_dict(x) for x in attestations),
            project_status=None if status is None else ProjectStatus.from_dict(status),
            dependencies=tuple(Dependency.from_dict(x) for x in d["dependencies"]),
            requested=d["requested"],
            extras=tuple(d["extras"]),
            build_dependency=d.get("build_dependency", False),
            targets=None if targets is None else tuple(targets),
            build_targets=None if build_targets is None else tuple(build_targets),
            destination=d["destination"],
            satisfied_by=SatisfiedBy.from_dict(d["satisfied_by"]),
            metadata=None if d.get("metadata") is None else dict(d["metadata"]),
            direct=d.get("direct", False),
            editable=d.get("editable", False),
            path=d.get("path"),
            exclude=tuple(d.get("exclude", ())),
            vcs=VcsInfo.from_dict(d.get("vcs")),
            subdirectory=d.get("subdirectory"),
        )


@described("plan")
@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    """A download plan: its inputs, the environments it serves and every file to fetch."""

    created: str
    creator: Creator = field(default_factory=Creator)
    inputs: Inputs
    targets: tuple[Target, ...]
    indexes: tuple[IndexRef, ...]
    destination: str
    artifacts: tuple[Artifact, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "created": self.created,
            "creator": self.creator.to_dict(),
            "inputs": self.inputs.to_dict(),
            "targets": [t.to_dict() for t in self.targets],
            "indexes": [i.to_dict() for i in self.indexes],
            "destination": self.destination,
            "artifacts": [a.to_dict() for a in self.artifacts],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        return cls(
            created=d["created"],
            creator=Creator.from_dict(d["creator"]),
            inputs=Inputs.from_dict(d["inputs"]),
            targets=tuple(Target.from_dict(t) for t in d["targets"]),
            indexes=tuple(IndexRef.from_dict(i) for i in d["indexes"]),
            destination=d["destination"],
            artifacts=tuple(Artifact.from_dict(a) for a in d["artifacts"]),
        )

    def destination_dir(self, plan_path: Path) -> Path:
        """The destination directory, resolved against the directory of the plan file."""
        dest = Path(self.destination)
        return dest if dest.is_absolute() else plan_path.parent / dest


def version_problem(version: str) -> str | None:
    """Why ``version`` is not a PEP 440 version written as it is meant, or None.

    packaging accepts white space around a version (``"1.0\n"``); nothing that writes a
    version into another file can, so it is refused here too.
    """
    if version != version.strip() or any(c.isspace() for c in version):
        return f"{version!r} contains white space"
    if long_number(version):
        return f"{version[:40]!r}... holds a number of more than 100 digits"
    try:
        Version(version)
    except InvalidVersion:
        return f"{version!r} is not a PEP 440 version"
    return None


def url_problem(url: str) -> str | None:
    """Why ``url`` (already of the schema's shape) cannot be requested as it is, or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{url!r} is not a valid URL ({exc})"
    if parts.scheme in ("http", "https") and not parts.hostname:
        return f"{url!r} has no host"
    if port == 0:
        return f"{url!r} has port 0"
    return None


def inner_path_problem(path: str) -> str | None:
    """Why ``path`` (POSIX, meant relative to a tree) is not a path inside that tree, or None:
    absolute, with a ``..`` segment, a backslash, or empty segments."""
    if path.startswith("/") or "\\" in path or (len(path) > 1 and path[1] == ":"):
        return f"{path!r} is not a relative POSIX path"
    segments = path.split("/")
    if ".." in segments:
        return f"{path!r} leaves the tree"
    if any(segment in ("", ".") for segment in segments):
        return f"{path!r} has empty or '.' segments"
    return None


def _path_problem(path: str) -> str | None:
    """Why an artifact's ``path`` cannot be what the planner writes (a relative path that
    leaves the plan's directory: the planner writes those absolute), or None."""
    if path.startswith("/") or path == ".":
        return None
    if "\\" in path or ".." in path.split("/"):
        return f"{path!r} is relative and leaves the plan's directory"
    return None


def _artifact_path_problems(i: int, artifact: dict[str, Any]) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    path = artifact.get("path")
    if isinstance(path, str):
        why = _path_problem(path)
        if why is not None:
            problems.append(FieldProblem(f"artifacts[{i}].path", why))
    vcs = artifact.get("vcs")
    if isinstance(vcs, dict) and isinstance(vcs.get("subdirectory"), str):
        why = inner_path_problem(vcs["subdirectory"])
        if why is not None:
            problems.append(FieldProblem(f"artifacts[{i}].vcs.subdirectory", why))
    if isinstance(artifact.get("subdirectory"), str):
        why = inner_path_problem(artifact["subdirectory"])
        if why is not None:
            problems.append(FieldProblem(f"artifacts[{i}].subdirectory", why))
    for j, excluded in enumerate(artifact.get("exclude", ())):
        if isinstance(excluded, str):
            why = inner_path_problem(excluded)
            if why is not None:
                problems.append(FieldProblem(f"artifacts[{i}].exclude[{j}]", why))
    return problems


def plan_problems(document: dict[str, Any]) -> list[FieldProblem]:
    """What the schema cannot say about a plan that passed it: versions that are not PEP 440
    and URLs that do not parse. Each a :class:`FieldProblem` with its dotted path."""
    problems: list[FieldProblem] = []
    for i, index in enumerate(document.get("indexes", ())):
        why = url_problem(index["url"])
        if why is not None:
            problems.append(FieldProblem(f"indexes[{i}].url", why))
    for i, artifact in enumerate(document.get("artifacts", ())):
        why = version_problem(artifact["version"])
        if why is not None:
            problems.append(FieldProblem(f"artifacts[{i}].version", why))
        for field_name in ("url", "index"):
            why = url_problem(artifact[field_name])
            if why is not None:
                problems.append(FieldProblem(f"artifacts[{i}].{field_name}", why))
        vcs = artifact.get("vcs")
        if isinstance(vcs, dict) and isinstance(vcs.get("url"), str):
            why = url_problem(vcs["url"])
            if why is not None:
                problems.append(FieldProblem(f"artifacts[{i}].vcs.url", why))
        problems.extend(_artifact_path_problems(i, artifact))
    return problems


def load_plan(path: Path) -> tuple[Plan, dict[str, Any]]:
    """Read and validate a plan; return it typed and as the raw document (for its digest)."""
    document = load_document(path, "plan")
    problems = plan_problems(document)
    if problems:
        raise FileFormatError(str(path), problems)
    return Plan.from_dict(document), document


def write_plan(path: Path, plan: Plan, *, output: bool = False) -> None:
    """Validate ``plan`` against the schema and write it atomically (YAML for .yaml/.yml);
    with ``output``, ``path`` is one the user named (``-`` for standard output)."""
    dump_document(path, plan.to_dict(), "plan", output=output)
