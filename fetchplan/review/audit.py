"""What a plan would make the machine do, for a reviewer to read before anything is fetched.

:func:`audit_plan` gathers, from the plan alone: the hosts and schemes contacted (indexes when
planning, file hosts when fetching) with bytes and artifact counts per host; artifacts without
a sha256; yanked ones; sdists (building one runs its code); projects whose files came from more
than one index; artifacts over a size threshold; requested versus transitive projects; and the
upload times and PEP 740 provenance URLs the index gave; the publishers and predicate types of
the attestations verified (when planning with ``--attestations``, or by ``audit
--attestations``), those that failed and the artifacts without any; the projects their index
marks archived or deprecated (PEP 792); and, given the advisories
of an OSV database (:mod:`.vulns`), the known vulnerabilities of each artifact. :func:`render_audit`
prints it for people; :meth:`Audit.to_dict` is the machine form.

The plan records the index each artifact was taken from, not every index that offered the
project, so "several indexes" means a project's files in this plan come from several.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fetchplan._text import human_size
from fetchplan._urls import is_loopback
from fetchplan.review._text import table
from fetchplan.schemas.plan import BUILT_KINDS, Artifact, Plan

if TYPE_CHECKING:
    from fetchplan.review.vulns import Advisory, VulnFinding

__all__ = [
    "DEFAULT_LARGE_FILE",
    "AttestedNote",
    "Audit",
    "FileNote",
    "HostUse",
    "audit_plan",
    "direct_source",
    "render_audit",
]

DEFAULT_LARGE_FILE = 100 * 10**6


@dataclass(frozen=True, kw_only=True, slots=True)
class HostUse:
    """One host the plan involves: as an index (planning) and/or a file host (fetching)."""

    host: str
    schemes: tuple[str, ...]
    roles: tuple[str, ...]
    artifacts: int
    bytes: int
    unknown_sizes: int
    insecure: bool
    """Plain http to a host that is not loopback: anyone on the path can read the traffic."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "schemes": list(self.schemes),
            "roles": list(self.roles),
            "artifacts": self.artifacts,
            "bytes": self.bytes,
            "unknown_sizes": self.unknown_sizes,
            "insecure": self.insecure,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class FileNote:
    """An artifact singled out by one audit section, with that section's detail."""

    project: str
    version: str
    filename: str
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "version": self.version,
            "filename": self.filename,
            "detail": self.detail,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class AttestedNote:
    """An artifact whose PEP 740 attestations were verified: by whom, attesting what."""

    project: str
    version: str
    filename: str
    publishers: tuple[dict[str, str | None], ...]
    identities: tuple[str, ...]
    """The publishers as a policy names them (``github:org/repo:workflow.yml``)."""
    predicate_types: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "version": self.version,
            "filename": self.filename,
            "publishers": [dict(p) for p in self.publishers],
            "identities": list(self.identities),
            "predicate_types": list(self.predicate_types),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Audit:
    """The audit of one plan; every tuple is in plan order."""

    artifacts: int
    total_bytes: int
    unknown_sizes: int
    indexes: tuple[str, ...]
    hosts: tuple[HostUse, ...]
    without_sha256: tuple[FileNote, ...]
    yanked: tuple[FileNote, ...]
    sdists: tuple[FileNote, ...]
    several_indexes: tuple[tuple[str, tuple[str, ...]], ...]
    large_threshold: int
    large: tuple[FileNote, ...]
    requested: tuple[str, ...]
    transitive: tuple[str, ...]
    build_only: tuple[str, ...]
    upload_times: tuple[FileNote, ...]
    provenance: tuple[FileNote, ...]
    vulnerabilities: tuple[VulnFinding, ...] | None = None
    """Known vulnerabilities per artifact; None when no database was consulted."""
    direct: tuple[FileNote, ...] = ()
    """Artifacts named by a direct reference (URL, local archive, directory, VCS commit)."""
    attested: tuple[AttestedNote, ...] = ()
    attestation_failures: tuple[FileNote, ...] = ()
    """Artifacts whose attestations failed to verify (``audit --attestations``), with why."""
    unattested: tuple[FileNote, ...] = ()
    """Artifacts without verified attestations: the index named no provenance, or it was not
    verified (the detail says which)."""
    project_statuses: tuple[tuple[str, str, str | None, str], ...] = ()
    """(project, PEP 792 status, the index's reason, index URL) of each project its index
    marks other than active, once per project and index."""
    exclude_newer: str | None = None
    """The upload-time cut-off the plan was made with (``plan --exclude-newer``), if any."""
    exclude_newer_package: tuple[tuple[str, str | None], ...] = ()
    """(project, its own cut-off or None for none) of ``--exclude-newer-package``."""

    def to_dict(self) -> dict[str, Any]:
        def notes(items: tuple[FileNote, ...]) -> list[dict[str, Any]]:
            return [n.to_dict() for n in items]

        return {
            "artifacts": self.artifacts,
            "total_bytes": self.total_bytes,
            "unknown_sizes": self.unknown_sizes,
            "indexes": list(self.indexes),
            "hosts": [h.to_dict() for h in self.hosts],
            "without_sha256": notes(self.without_sha256),
            "yanked": notes(self.yanked),
            "sdists": notes(self.sdists),
            "several_indexes": [
                {"project": name, "indexes": list(urls)} for name, urls in self.several_indexes
            ],
            "large_threshold": self.large_threshold,
            "large": notes(self.large),
            "projects": {
                "requested": list(self.requested),
                "transitive": list(self.transitive),
                "build_only": list(self.build_only),
            },
            "upload_times": notes(self.upload_times),
            "provenance": notes(self.provenance),
            "vulnerabilities": None
            if self.vulnerabilities is None
            else [v.to_dict() for v in self.vulnerabilities],
            "direct": notes(self.direct),
            "project_statuses": [
                {"project": name, "status": status, "reason": reason, "index": index}
                for name, status, reason, index in self.project_statuses
            ],
            "attestations": {
                "verified": [n.to_dict() for n in self.attested],
                "failed": notes(self.attestation_failures),
                "unattested": notes(self.unattested),
            },
            "exclude_newer": {
                "cut_off": self.exclude_newer,
                "packages": dict(self.exclude_newer_package),
            },
        }


def _note(artifact: Artifact, detail: str | None = None) -> FileNote:
    return FileNote(
        project=artifact.name, version=artifact.version, filename=artifact.filename, detail=detail
    )


def _hosts(plan: Plan) -> tuple[HostUse, ...]:
    schemes: dict[str, set[str]] = {}
    roles: dict[str, set[str]] = {}
    counts: dict[str, list[int]] = {}

    def touch(url: str, role: str) -> str:
        parts = urlsplit(url)
        host = parts.netloc.lower() if parts.scheme != "file" else "(local files)"
        schemes.setdefault(host, set()).add(parts.scheme.lower())
        roles.setdefault(host, set()).add(role)
        counts.setdefault(host, [0, 0, 0])
        return host

    for index in plan.indexes:
        touch(index.url, index.kind)
    for artifact in plan.artifacts:
        if not artifact.direct:  # a direct reference's "index" is its own URL
            touch(artifact.index, "index")
        host = touch(artifact.url, "files")
        counts[host][0] += 1
        if artifact.size is None:
            counts[host][2] += 1
        else:
            counts[host][1] += artifact.size
    return tuple(
        HostUse(
            host=host,
            schemes=tuple(sorted(schemes[host])),
            roles=tuple(sorted(roles[host])),
            artifacts=counts[host][0],
            bytes=counts[host][1],
            unknown_sizes=counts[host][2],
            insecure="http" in schemes[host]
            and not is_loopback(urlsplit(f"//{host}").hostname or ""),
        )
        for host in sorted(schemes)
    )


def _attested(artifact: Artifact) -> AttestedNote | None:
    if not artifact.attestations:
        return None
    types: list[str] = []
    for bundle in artifact.attestations:
        types.extend(t for t in bundle.predicate_types if t not in types)
    return AttestedNote(
        project=artifact.name,
        version=artifact.version,
        filename=artifact.filename,
        publishers=tuple(dict(b.publisher) for b in artifact.attestations),
        identities=tuple(dict.fromkeys(b.identity for b in artifact.attestations)),
        predicate_types=tuple(types),
    )


def _unattested(artifact: Artifact, failed: set[str]) -> FileNote | None:
    if artifact.attestations or artifact.filename in failed:
        return None
    if artifact.provenance is None:
        return _note(artifact, "the index named no provenance")
    return _note(artifact, "provenance not verified (plan or audit with --attestations)")


def _vulnerabilities(
    artifacts: tuple[Artifact, ...], advisories: Iterable[Advisory] | None
) -> tuple[VulnFinding, ...] | None:
    if advisories is None:
        return None
    from fetchplan.review.vulns import find_vulnerabilities

    return find_vulnerabilities(artifacts, advisories)


def _several_indexes(artifacts: tuple[Artifact, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    by_project: dict[str, list[str]] = {}
    for artifact in artifacts:
        urls = by_project.setdefault(artifact.name, [])
        if artifact.index not in urls:
            urls.append(artifact.index)
    return tuple((name, tuple(urls)) for name, urls in by_project.items() if len(urls) > 1)


def _project_roles(
    artifacts: tuple[Artifact, ...],
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(requested, transitive, build-only) project names, each sorted."""
    requested = sorted({a.name for a in artifacts if a.requested})
    runtime = {a.name for a in artifacts if not a.build_dependency}
    build = {a.name for a in artifacts if a.build_dependency}
    return (
        tuple(requested),
        tuple(sorted(runtime - set(requested))),
        tuple(sorted(build - runtime - set(requested))),
    )


def _without_sha256(artifacts: tuple[Artifact, ...]) -> tuple[FileNote, ...]:
    return tuple(
        _note(a, ", ".join(sorted(a.hashes)) or "no hash at all")
        for a in artifacts
        if a.sha256 is None
    )


def _large(artifacts: tuple[Artifact, ...], threshold: int) -> tuple[FileNote, ...]:
    return tuple(
        _note(a, str(a.size)) for a in artifacts if a.size is not None and a.size > threshold
    )


def _failed(artifacts: tuple[Artifact, ...], failures: dict[str, str]) -> tuple[FileNote, ...]:
    return tuple(_note(a, failures[a.filename]) for a in artifacts if a.filename in failures)


def _project_statuses(
    artifacts: tuple[Artifact, ...],
) -> tuple[tuple[str, str, str | None, str], ...]:
    return tuple(
        dict.fromkeys(
            (a.name, a.project_status.status, a.project_status.reason, a.index)
            for a in artifacts
            if a.project_status is not None
        )
    )


def _notes_where(
    artifacts: tuple[Artifact, ...],
    keep: Callable[[Artifact], object],
    detail: Callable[[Artifact], str | None],
) -> tuple[FileNote, ...]:
    return tuple(_note(a, detail(a)) for a in artifacts if keep(a))


def _attestation_sections(
    artifacts: tuple[Artifact, ...], failures: dict[str, str]
) -> tuple[tuple[AttestedNote, ...], tuple[FileNote, ...], tuple[FileNote, ...]]:
    """(verified, failed, unattested) artifacts."""
    return (
        tuple(n for a in artifacts if (n := _attested(a)) is not None),
        _failed(artifacts, failures),
        tuple(u for a in artifacts if (u := _unattested(a, set(failures))) is not None),
    )


def audit_plan(
    plan: Plan,
    *,
    large_threshold: int = DEFAULT_LARGE_FILE,
    advisories: Iterable[Advisory] | None = None,
    attestation_failures: Iterable[tuple[str, str]] = (),
) -> Audit:
    """Everything :mod:`fetchplan.review.audit` reports, for ``plan``; pure.

    ``advisories`` (from :func:`fetchplan.review.vulns.load_osv_database`) are matched
    against every artifact; None leaves ``vulnerabilities`` unchecked.
    ``attestation_failures`` are (file name, reason) pairs of the artifacts whose
    attestations failed to verify.
    """
    failures = dict(attestation_failures)
    artifacts = plan.artifacts
    requested, transitive, build_only = _project_roles(artifacts)
    attested, failed, unattested = _attestation_sections(artifacts, failures)
    return Audit(
        artifacts=len(artifacts),
        total_bytes=sum(a.size for a in artifacts if a.size is not None),
        unknown_sizes=sum(1 for a in artifacts if a.size is None),
        indexes=tuple(i.url for i in plan.indexes),
        hosts=_hosts(plan),
        without_sha256=_without_sha256(artifacts),
        several_indexes=_several_indexes(artifacts),
        large_threshold=large_threshold,
        large=_large(artifacts, large_threshold),
        requested=requested,
        transitive=transitive,
        build_only=build_only,
        vulnerabilities=_vulnerabilities(artifacts, advisories),
        attested=attested,
        attestation_failures=failed,
        unattested=unattested,
        project_statuses=_project_statuses(artifacts),
        yanked=_notes_where(artifacts, lambda a: a.yanked, lambda a: a.yanked_reason),
        sdists=_notes_where(artifacts, lambda a: a.kind in BUILT_KINDS, lambda a: a.kind),
        upload_times=_notes_where(artifacts, lambda a: a.upload_time, lambda a: a.upload_time),
        provenance=_notes_where(artifacts, lambda a: a.provenance, lambda a: a.provenance),
        direct=_notes_where(artifacts, lambda a: a.direct, direct_source),
        **_cut_offs(plan),
    )


def _cut_offs(plan: Plan) -> dict[str, Any]:
    """The plan's recorded ``exclude_newer`` and ``exclude_newer_package`` (``false``: none)."""
    options = plan.inputs.options
    cut_off = options.get("exclude_newer")
    packages = options.get("exclude_newer_package")
    own = packages.items() if isinstance(packages, dict) else ()
    return {
        "exclude_newer": cut_off if isinstance(cut_off, str) else None,
        "exclude_newer_package": tuple(
            (str(name), value if isinstance(value, str) else None) for name, value in sorted(own)
        ),
    }


def direct_source(artifact: Artifact) -> str:
    """Where a direct artifact comes from, in words: the URL, path or commit."""
    if artifact.vcs is not None:
        revision = artifact.vcs.requested_revision
        asked = f" (asked for {revision})" if revision else ""
        return f"git {artifact.vcs.url} commit {artifact.vcs.commit_id}{asked}"
    if artifact.kind == "directory":
        return f"{'editable ' if artifact.editable else ''}directory {artifact.path}"
    if artifact.path is not None:
        return f"local file {artifact.path}"
    return f"URL {artifact.url}"


def _notes(items: tuple[FileNote, ...], detail: str | None = None) -> str:
    headers = ["project", "version", "file"] + ([detail] if detail else [])
    rows = [
        [n.project, n.version, n.filename] + ([n.detail or ""] if detail else []) for n in items
    ]
    return table(headers, rows)


def render_audit(audit: Audit) -> str:
    """The audit as a readable report (text with a final newline)."""
    unknown = f", {audit.unknown_sizes} of unknown size" if audit.unknown_sizes else ""
    out = [
        f"{audit.artifacts} artifacts, {human_size(audit.total_bytes)}{unknown}",
        f"projects: {len(audit.requested)} requested, {len(audit.transitive)} transitive, "
        f"{len(audit.build_only)} for building only",
        "",
        "Hosts contacted:",
        table(
            ["host", "schemes", "roles", "artifacts", "bytes", "note"],
            [
                [
                    h.host,
                    ",".join(h.schemes),
                    ",".join(h.roles),
                    h.artifacts,
                    human_size(h.bytes)
                    + (f" (+{h.unknown_sizes} unknown)" if h.unknown_sizes else ""),
                    "INSECURE: plain http" if h.insecure else "",
                ]
                for h in audit.hosts
            ],
        ),
        "",
        "Indexes:",
        table(["url"], [[u] for u in audit.indexes]),
        "",
        "Artifacts without a sha256 (cannot be verified):",
        _notes(audit.without_sha256, "hashes"),
        "",
        "Yanked artifacts:",
        _notes(audit.yanked, "reason"),
        "",
        "Sdists and source trees (building them runs their code):",
        _notes(audit.sdists, "kind"),
        "",
        "Direct references (named by the requirements, not found on an index):",
        _notes(audit.direct, "from"),
        "",
        "Projects whose files come from more than one index:",
        table(["project", "indexes"], [[n, " ".join(u)] for n, u in audit.several_indexes]),
        "",
        f"Artifacts larger than {human_size(audit.large_threshold)}:",
        _notes(audit.large, "bytes"),
        "",
        "Requested projects: " + (", ".join(audit.requested) or "(none)"),
        "Transitive projects: " + (", ".join(audit.transitive) or "(none)"),
    ]
    if audit.build_only:
        out.append("Build-only projects: " + ", ".join(audit.build_only))
    out += [
        "",
        "Upload-time cut-off (plan --exclude-newer): "
        + (audit.exclude_newer or "none, files of any upload time were candidates"),
        *(
            f"  {name}: {cut_off or 'none'} (--exclude-newer-package)"
            for name, cut_off in audit.exclude_newer_package
        ),
        "",
        "Upload times (from the index):",
        _notes(audit.upload_times, "uploaded"),
        "",
        "PEP 740 provenance (from the index):",
        _notes(audit.provenance, "provenance"),
        "",
        "Verified attestations (PEP 740):",
        table(
            ["project", "version", "file", "publisher", "predicate types"],
            [
                [
                    n.project,
                    n.version,
                    n.filename,
                    *map(" ".join, (n.identities, n.predicate_types)),
                ]
                for n in audit.attested
            ],
        ),
    ]
    if audit.attestation_failures:
        out += [
            "",
            f"ATTESTATIONS THAT FAILED TO VERIFY ({len(audit.attestation_failures)}):",
            _notes(audit.attestation_failures, "reason"),
        ]
    out += ["", "Artifacts without verified attestations:", _notes(audit.unattested, "why")]
    out += [
        "",
        "Projects their index marks archived, deprecated or quarantined (PEP 792):",
        table(
            ["project", "status", "reason", "index"],
            [
                [n, status, reason or "", index]
                for n, status, reason, index in audit.project_statuses
            ],
        ),
    ]
    if audit.vulnerabilities is not None:
        from fetchplan.review.vulns import describe

        out += [
            "",
            f"Known vulnerabilities ({len(audit.vulnerabilities)}):",
            table(
                ["project", "version", "id", "aliases", "severity", "fixed in", "summary"],
                describe(audit.vulnerabilities),
            ),
        ]
    return "\n".join(out) + "\n"
