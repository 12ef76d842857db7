"""What changed between two plans: projects added, removed, upgraded or downgraded; files whose
URL, host or size changed; and, loudest, files of the same project version whose hashes changed
(the same release should never change bytes: an index serving different content for it is a
red flag), projects whose PEP 740 publisher changed (another repository or workflow now
publishes them), projects whose attestations disappeared (a provenance URL or verified
attestations before, none now) and projects whose PEP 792 status changed to archived,
deprecated or quarantined (a change back to active is listed, not warned about).

Projects are compared by name over all targets: a project's versions are the set of versions
its artifacts have. Files are compared by (project, version, filename).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from packaging.version import Version

from fetchplan._text import human_size
from fetchplan.review._text import table
from fetchplan.schemas.plan import SOURCE_TREE_KINDS, Artifact, Plan

__all__ = [
    "AttestationChange",
    "FileChange",
    "HashChange",
    "PlanDiff",
    "ProjectChange",
    "StatusChange",
    "diff_plans",
    "render_diff",
]

ChangeKind = Literal["added", "removed", "upgraded", "downgraded", "changed"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ProjectChange:
    """A project whose set of versions differs between the plans."""

    project: str
    kind: ChangeKind
    old: tuple[str, ...]
    new: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "kind": self.kind,
            "old": list(self.old),
            "new": list(self.new),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class FileChange:
    """A file present in both plans whose URL, host or size differs."""

    project: str
    version: str
    filename: str
    old_url: str
    new_url: str
    host_changed: bool
    old_size: int | None
    new_size: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "version": self.version,
            "filename": self.filename,
            "old_url": self.old_url,
            "new_url": self.new_url,
            "host_changed": self.host_changed,
            "old_size": self.old_size,
            "new_size": self.new_size,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class HashChange:
    """The same file of the same project version with a different hash: a warning."""

    project: str
    version: str
    filename: str
    algorithm: str
    old: str
    new: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "version": self.version,
            "filename": self.filename,
            "algorithm": self.algorithm,
            "old": self.old,
            "new": self.new,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class AttestationChange:
    """A project whose verified publishers changed, or whose attestations disappeared."""

    project: str
    kind: Literal["publisher_changed", "disappeared"]
    old: tuple[str, ...]
    """The publisher identities verified in the old plan (``github:org/repo:workflow``)."""
    new: tuple[str, ...]
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "kind": self.kind,
            "old": list(self.old),
            "new": list(self.new),
            "detail": self.detail,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class StatusChange:
    """A project whose PEP 792 status differs between the plans (``active`` when a plan
    records none); a warning unless the new status is ``active``."""

    project: str
    old: str
    new: str
    reason: str | None
    """The index's reason for the new status, when it gave one."""

    @property
    def warning(self) -> bool:
        return self.new != "active"

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "old": self.old,
            "new": self.new,
            "reason": self.reason,
            "warning": self.warning,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanDiff:
    projects: tuple[ProjectChange, ...]
    files: tuple[FileChange, ...]
    hashes: tuple[HashChange, ...]
    files_added: tuple[str, ...]
    """Filenames new in a project version present in both plans."""
    files_removed: tuple[str, ...]
    old_total: int
    new_total: int
    old_unknown: int
    new_unknown: int
    trees: tuple[HashChange, ...] = ()
    """Source trees (a directory's, a VCS commit's) of an unchanged version whose digest
    changed: expected once their source was edited, so not among ``hashes``' warnings."""
    origins: tuple[tuple[str, str, str], ...] = ()
    """(project, old origin, new origin) for projects whose files now come from elsewhere:
    an index, a direct URL, a local path or a VCS commit (see ``audit.direct_source``)."""
    attestations: tuple[AttestationChange, ...] = ()
    statuses: tuple[StatusChange, ...] = ()

    @property
    def warnings(self) -> bool:
        """Whether the diff holds a warning (the CLI's exit status 1)."""
        return bool(self.hashes or self.attestations or any(c.warning for c in self.statuses))

    @property
    def empty(self) -> bool:
        return not (
            self.projects
            or self.files
            or self.hashes
            or self.files_added
            or self.files_removed
            or self.trees
            or self.origins
            or self.attestations
            or self.statuses
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "projects": [c.to_dict() for c in self.projects],
            "files": [c.to_dict() for c in self.files],
            "hash_changes": [c.to_dict() for c in self.hashes],
            "files_added": list(self.files_added),
            "files_removed": list(self.files_removed),
            "source_trees": [c.to_dict() for c in self.trees],
            "origins": [
                {"project": name, "old": old, "new": new} for name, old, new in self.origins
            ],
            "attestation_changes": [c.to_dict() for c in self.attestations],
            "status_changes": [c.to_dict() for c in self.statuses],
            "size": {
                "old_total": self.old_total,
                "new_total": self.new_total,
                "old_unknown": self.old_unknown,
                "new_unknown": self.new_unknown,
            },
        }


def _versions(plan: Plan) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for artifact in plan.artifacts:
        out.setdefault(artifact.name, set()).add(artifact.version)
    return out


def _sorted(versions: set[str]) -> tuple[str, ...]:
    return tuple(sorted(versions, key=Version))


def _project_change(name: str, old: set[str], new: set[str]) -> ProjectChange | None:
    if old == new:
        return None
    kind: ChangeKind
    if not old:
        kind = "added"
    elif not new:
        kind = "removed"
    else:
        old_max, new_max = max(map(Version, old)), max(map(Version, new))
        kind = "upgraded" if new_max > old_max else "downgraded" if new_max < old_max else "changed"
    return ProjectChange(project=name, kind=kind, old=_sorted(old), new=_sorted(new))


def _files(plan: Plan) -> dict[tuple[str, str, str], Artifact]:
    return {(a.name, a.version, a.filename): a for a in plan.artifacts}


def _attestation_state(plan: Plan) -> dict[str, tuple[set[str], bool, bool]]:
    """Per project: the verified publisher identities, whether some file has a provenance URL
    or verified attestations, and whether some file has a provenance URL not verified."""
    out: dict[str, tuple[set[str], bool, bool]] = {}
    for artifact in plan.artifacts:
        identities, attested, unverified = out.get(artifact.name, (set(), False, False))
        identities |= {bundle.identity for bundle in artifact.attestations or ()}
        attested = attested or artifact.provenance is not None or bool(artifact.attestations)
        unverified = unverified or (artifact.provenance is not None and not artifact.attestations)
        out[artifact.name] = (identities, attested, unverified)
    return out


def _attestation_changes(old: Plan, new: Plan) -> list[AttestationChange]:
    before, after = _attestation_state(old), _attestation_state(new)
    changes: list[AttestationChange] = []
    for name in sorted(before.keys() & after.keys()):
        (old_ids, old_attested, _), (new_ids, new_attested, new_unverified) = (
            before[name],
            after[name],
        )
        if old_ids and new_ids and old_ids != new_ids:
            changes.append(
                AttestationChange(
                    project=name,
                    kind="publisher_changed",
                    old=tuple(sorted(old_ids)),
                    new=tuple(sorted(new_ids)),
                    detail="another publisher attests this project's files now",
                )
            )
        elif old_attested and not new_attested:
            changes.append(
                AttestationChange(
                    project=name,
                    kind="disappeared",
                    old=tuple(sorted(old_ids)),
                    new=(),
                    detail="the index names no provenance for its files any more",
                )
            )
        elif old_ids and not new_ids and new_unverified:
            changes.append(
                AttestationChange(
                    project=name,
                    kind="disappeared",
                    old=tuple(sorted(old_ids)),
                    new=(),
                    detail="the new plan has no verified attestations (plan with --attestations)",
                )
            )
    return changes


def _statuses(plan: Plan) -> dict[str, tuple[str, str | None]]:
    """Per project: its PEP 792 status (``active`` when none is recorded; the statuses of
    files from several indexes joined by ``/``) and the first reason given."""
    found: dict[str, dict[str, str | None]] = {}
    for artifact in plan.artifacts:
        status = artifact.project_status
        name = "active" if status is None else status.status
        reasons = found.setdefault(artifact.name, {})
        if reasons.get(name) is None:
            reasons[name] = None if status is None else status.reason
    return {
        project: ("/".join(sorted(reasons)), next((r for r in reasons.values() if r), None))
        for project, reasons in found.items()
    }


def _status_changes(old: Plan, new: Plan) -> tuple[StatusChange, ...]:
    before, after = _statuses(old), _statuses(new)
    return tuple(
        StatusChange(project=name, old=before[name][0], new=after[name][0], reason=after[name][1])
        for name in sorted(before.keys() & after.keys())
        if before[name][0] != after[name][0]
    )


def _project_changes(old: Plan, new: Plan) -> tuple[ProjectChange, ...]:
    old_versions, new_versions = _versions(old), _versions(new)
    return tuple(
        change
        for name in sorted(old_versions.keys() | new_versions.keys())
        if (
            change := _project_change(
                name, old_versions.get(name, set()), new_versions.get(name, set())
            )
        )
        is not None
    )


def _hash_changes(a: Artifact, b: Artifact) -> list[HashChange]:
    return [
        HashChange(
            project=a.name,
            version=a.version,
            filename=a.filename,
            algorithm=algorithm,
            old=a.hashes[algorithm],
            new=b.hashes[algorithm],
        )
        for algorithm in sorted(a.hashes.keys() & b.hashes.keys())
        if a.hashes[algorithm] != b.hashes[algorithm]
    ]


def _file_change(a: Artifact, b: Artifact) -> FileChange | None:
    if a.url == b.url and a.size == b.size:
        return None
    return FileChange(
        project=a.name,
        version=a.version,
        filename=a.filename,
        old_url=a.url,
        new_url=b.url,
        host_changed=urlsplit(a.url).netloc.lower() != urlsplit(b.url).netloc.lower(),
        old_size=a.size,
        new_size=b.size,
    )


def _unchanged_version_changes(
    old_files: dict[tuple[str, str, str], Artifact], new_files: dict[tuple[str, str, str], Artifact]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(added, removed) file names of the project versions both plans have."""
    shared = {(n, v) for n, v, _ in old_files} & {(n, v) for n, v, _ in new_files}
    added = sorted(f for (n, v, f) in new_files.keys() - old_files.keys() if (n, v) in shared)
    removed = sorted(f for (n, v, f) in old_files.keys() - new_files.keys() if (n, v) in shared)
    return tuple(added), tuple(removed)


def _total(plan: Plan) -> tuple[int, int]:
    """(known bytes, how many sizes are unknown) of ``plan``."""
    return (
        sum(a.size for a in plan.artifacts if a.size is not None),
        sum(1 for a in plan.artifacts if a.size is None),
    )


def diff_plans(old: Plan, new: Plan) -> PlanDiff:
    """The differences from ``old`` to ``new``; pure, ordered by project name then filename."""
    old_files, new_files = _files(old), _files(new)
    file_changes: list[FileChange] = []
    hash_changes: list[HashChange] = []
    tree_changes: list[HashChange] = []
    for key in sorted(old_files.keys() & new_files.keys()):
        a, b = old_files[key], new_files[key]
        into = tree_changes if {a.kind, b.kind} <= SOURCE_TREE_KINDS else hash_changes
        into.extend(_hash_changes(a, b))
        if (change := _file_change(a, b)) is not None:
            file_changes.append(change)
    added, removed = _unchanged_version_changes(old_files, new_files)
    (old_total, old_unknown), (new_total, new_unknown) = _total(old), _total(new)
    return PlanDiff(
        projects=_project_changes(old, new),
        files=tuple(file_changes),
        hashes=tuple(hash_changes),
        files_added=added,
        files_removed=removed,
        old_total=old_total,
        new_total=new_total,
        old_unknown=old_unknown,
        new_unknown=new_unknown,
        trees=tuple(tree_changes),
        origins=_origins(old, new),
        attestations=tuple(_attestation_changes(old, new)),
        statuses=_status_changes(old, new),
    )


def _origin(artifact: Artifact) -> str:
    if not artifact.direct:
        return f"index {artifact.index}"
    from fetchplan.review.audit import direct_source

    return direct_source(artifact)


def _origins(old: Plan, new: Plan) -> tuple[tuple[str, str, str], ...]:
    def origins(plan: Plan) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for artifact in plan.artifacts:
            if not artifact.build_dependency:
                found.setdefault(artifact.name, set()).add(_origin(artifact))
        return found

    before, after = origins(old), origins(new)
    changed = []
    for name in sorted(before.keys() & after.keys()):
        was, now = before[name], after[name]
        # Index files of a new version come from the same index: only a change of kind counts.
        if {o.split()[0] for o in was} != {o.split()[0] for o in now} or (
            any(not o.startswith("index ") for o in was | now) and was != now
        ):
            changed.append((name, "; ".join(sorted(was)), "; ".join(sorted(now))))
    return tuple(changed)


def _signed_bytes(delta: int) -> str:
    return ("+" if delta >= 0 else "-") + human_size(abs(delta))


def _section(title: str, headers: list[str], rows: list[list[str]]) -> list[str]:
    """A titled table and a blank line, or nothing when there are no rows."""
    if not rows:
        return []
    return [title, table(headers, rows), ""]


def _hash_warning(diff: PlanDiff) -> list[str]:
    return _section(
        f"WARNING: {len(diff.hashes)} file(s) of an unchanged project version have "
        "different hashes. The same release should never change bytes; find out why "
        "before fetching.",
        ["project", "version", "file", "algorithm", "old", "new"],
        [[c.project, c.version, c.filename, c.algorithm, c.old, c.new] for c in diff.hashes],
    )


def _attestation_warning(diff: PlanDiff) -> list[str]:
    return _section(
        f"WARNING: {len(diff.attestations)} project(s) changed PEP 740 publisher or lost "
        "their attestations. A new publisher or none at all can mean the project's release "
        "path was taken over; find out why before fetching.",
        ["project", "change", "old publisher", "new publisher", "note"],
        [
            [
                c.project,
                "PUBLISHER CHANGED" if c.kind == "publisher_changed" else "DISAPPEARED",
                " ".join(c.old) or "-",
                " ".join(c.new) or "-",
                c.detail,
            ]
            for c in diff.attestations
        ],
    )


def _status_warning(diff: PlanDiff) -> list[str]:
    changes = [c for c in diff.statuses if c.warning]
    return _section(
        f"WARNING: {len(changes)} project(s) changed PEP 792 status. An archived or "
        "deprecated project gets no more fixes, a quarantined one is held unsafe by its "
        "index; find out why before fetching.",
        ["project", "old status", "new status", "reason"],
        [[c.project, c.old, c.new.upper(), c.reason or "-"] for c in changes],
    )


def _status_section(diff: PlanDiff) -> list[str]:
    return _section(
        "Changed project status:",
        ["project", "old status", "new status"],
        [[c.project, c.old, c.new] for c in diff.statuses if not c.warning],
    )


def _project_sections(diff: PlanDiff) -> list[str]:
    out: list[str] = []
    for kind in ("added", "removed", "upgraded", "downgraded", "changed"):
        rows = [
            [c.project, " ".join(c.old) or "-", " ".join(c.new) or "-"]
            for c in diff.projects
            if c.kind == kind
        ]
        out.extend(_section(f"{kind.capitalize()} projects:", ["project", "old", "new"], rows))
    return out


def _url_section(diff: PlanDiff) -> list[str]:
    return _section(
        "Changed URLs:",
        ["file", "old URL", "new URL", "note"],
        [
            [c.filename, c.old_url, c.new_url, "HOST CHANGED" if c.host_changed else ""]
            for c in diff.files
            if c.old_url != c.new_url
        ],
    )


def _size_section(diff: PlanDiff) -> list[str]:
    return _section(
        "Changed sizes:",
        ["file", "old", "new"],
        [
            [c.filename, human_size(c.old_size), human_size(c.new_size)]
            for c in diff.files
            if c.old_size != c.new_size
        ],
    )


def _origin_section(diff: PlanDiff) -> list[str]:
    return _section(
        "Changed origins (where a project's files come from):",
        ["project", "old", "new"],
        [list(row) for row in diff.origins],
    )


def _tree_section(diff: PlanDiff) -> list[str]:
    return _section(
        "Changed source trees (their source was edited, or another commit taken):",
        ["project", "version", "file", "old", "new"],
        [[c.project, c.version, c.filename, c.old, c.new] for c in diff.trees],
    )


def _unchanged_version_files(diff: PlanDiff) -> list[str]:
    if not (diff.files_added or diff.files_removed):
        return []
    return [
        "Files of unchanged versions:",
        *(f"  + {f}" for f in diff.files_added),
        *(f"  - {f}" for f in diff.files_removed),
        "",
    ]


def _total_line(diff: PlanDiff) -> str:
    unknown = ""
    if diff.old_unknown or diff.new_unknown:
        unknown = f" (unknown sizes: {diff.old_unknown} -> {diff.new_unknown})"
    return (
        f"Total size: {human_size(diff.old_total)} -> {human_size(diff.new_total)} "
        f"({_signed_bytes(diff.new_total - diff.old_total)}){unknown}"
    )


_SECTIONS = (
    _project_sections,
    _url_section,
    _size_section,
    _origin_section,
    _tree_section,
    _status_section,
    _unchanged_version_files,
)
"""What a non-empty diff reports after its warnings, in order."""


def render_diff(diff: PlanDiff) -> str:
    """The diff as a readable report (text with a final newline)."""
    out = _hash_warning(diff) + _attestation_warning(diff) + _status_warning(diff)
    if diff.empty:
        out.append("No differences.")
        return "\n".join(out) + "\n"
    for section in _SECTIONS:
        out.extend(section(diff))
    out.append(_total_line(diff))
    return "\n".join(out) + "\n"
