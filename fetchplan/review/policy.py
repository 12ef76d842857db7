"""Download policies: rules a plan must meet, checked before a byte is fetched.

A policy file (YAML or JSON, schema ``fetchplan/schemas/policy.schema.json``) is read by
:func:`load_policy`; :func:`check_policy` lists every :class:`Violation` of a plan, each naming
the rule and the artifact. The module is pure apart from :func:`load_policy` and imports
nothing of the planner, so the executor can enforce the same policy air-gapped.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from fetchplan._age import format_duration, parse_duration, parse_time
from fetchplan.errors import FetchplanError, FieldProblem, FileFormatError
from fetchplan.schemas import load_document, validate
from fetchplan.schemas.plan import BUILT_KINDS, SOURCE_TREE_KINDS, Artifact, AttestationBundle, Plan

if TYPE_CHECKING:
    from fetchplan.review.vulns import Level, VulnFinding

__all__ = [
    "Policy",
    "PolicyViolationError",
    "Rule",
    "Violation",
    "check_policy",
    "check_vulns",
    "enforce_policy",
    "host_allowed",
    "load_policy",
    "parse_size",
    "policy_from_dict",
    "publisher_allowed",
]

Rule = Literal[
    "allowed_schemes",
    "allowed_hosts",
    "allowed_indexes",
    "require_hashes",
    "yanked",
    "sdists",
    "allow_direct_urls",
    "allow_vcs",
    "max_file_size",
    "max_total_size",
    "deny",
    "pins",
    "deny_vulns",
    "max_severity",
    "min_age",
    "require_attestations",
    "publishers",
    "project_status",
]
Choice = Literal["allow", "forbid"]

_UNITS = {
    "B": 1,
    "kB": 10**3,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_size(value: int | str) -> int:
    """Bytes for ``1234``, ``"500kB"``, ``"10MB"`` or ``"1.5GiB"`` (decimal and binary units)."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value)
    unit = match.group(2) if match else ""
    if match is None or (unit and unit not in _UNITS):
        raise ValueError(f"not a size: {value!r} (use bytes, or a unit: kB MB GB KiB MiB GiB)")
    return int(float(match.group(1)) * _UNITS[unit or "B"])


@dataclass(frozen=True, kw_only=True, slots=True)
class Policy:
    """A parsed policy; None (or an empty rule) means the rule is absent."""

    allowed_schemes: frozenset[str] | None = None
    allowed_hosts: tuple[str, ...] | None = None
    allowed_indexes: tuple[str, ...] | None = None
    require_hashes: bool = False
    yanked: Choice = "allow"
    sdist_default: Choice = "allow"
    sdist_allow: frozenset[NormalizedName] = frozenset()
    sdist_forbid: frozenset[NormalizedName] = frozenset()
    allow_direct_urls: bool = True
    allow_vcs: bool = True
    max_file_size: int | None = None
    max_total_size: int | None = None
    deny: tuple[Requirement, ...] = ()
    pins: tuple[Requirement, ...] = ()
    deny_vulns: bool = False
    max_severity: Level | None = None
    ignore_vulns: frozenset[str] = frozenset()
    min_age: _dt.timedelta | None = None
    """The default minimum age of a file (since its upload) for projects no pattern names."""
    min_age_projects: tuple[tuple[str, _dt.timedelta], ...] = ()
    """(project pattern, minimum age), first match wins; an exact name beats any pattern."""
    min_age_exempt: tuple[str, ...] = ()
    """Project patterns (``fnmatch``, on canonical names) ``min_age`` does not apply to."""
    require_attestations: tuple[str, ...] = ()
    """Project patterns whose files must have verified PEP 740 attestations (``*``: all)."""
    publishers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(project pattern, allowed publisher identities), an exact name first, then in order."""
    deny_project_status: frozenset[str] = frozenset()
    """PEP 792 statuses (``archived``, ``deprecated``, ``quarantined``) a project may not have."""

    def attestations_required(self, name: str) -> bool:
        """Whether ``require_attestations`` names project ``name``."""
        project = canonicalize_name(name)
        return any(fnmatchcase(project, pattern) for pattern in self.require_attestations)

    def allowed_publishers(self, name: str) -> tuple[str, ...] | None:
        """The publisher identities ``publishers`` allows for project ``name``, or None."""
        project = canonicalize_name(name)
        for pattern, allowed in self.publishers:
            if pattern == project:
                return allowed
        for pattern, allowed in self.publishers:
            if fnmatchcase(project, pattern):
                return allowed
        return None

    def required_age(self, name: str) -> _dt.timedelta | None:
        """The minimum age ``min_age`` asks of project ``name``'s files, or None."""
        project = canonicalize_name(name)
        if any(fnmatchcase(project, pattern) for pattern in self.min_age_exempt):
            return None
        for pattern, age in self.min_age_projects:
            if pattern == project:
                return age
        for pattern, age in self.min_age_projects:
            if fnmatchcase(project, pattern):
                return age
        return self.min_age

    @property
    def checks_vulns(self) -> bool:
        """Whether a rule needs a vulnerability database (only ``audit --vulns`` has one)."""
        return self.deny_vulns or self.max_severity is not None

    def sdist_allowed(self, name: str) -> bool:
        """Whether project ``name`` may be fetched as an sdist."""
        project = canonicalize_name(name)
        if project in self.sdist_forbid:
            return False
        if project in self.sdist_allow:
            return True
        return self.sdist_default == "allow"


@dataclass(frozen=True, kw_only=True, slots=True)
class Violation:
    """One breach of a policy rule, by one artifact (or by the plan as a whole)."""

    rule: Rule
    message: str
    filename: str | None = None
    project: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        where = self.filename if self.filename is not None else "(plan)"
        return f"{where}: {self.rule}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "filename": self.filename,
            "project": self.project,
            "version": self.version,
        }


class PolicyViolationError(FetchplanError):
    """A plan breaks its policy; ``violations`` lists every breach."""

    def __init__(self, source: str, violations: list[Violation]) -> None:
        self.violations = violations
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        super().__init__(f"{source}: policy violated: {first}{more}")


def _requirements(values: list[str], field: str, problems: list[FieldProblem]) -> list[Requirement]:
    out = []
    for i, text in enumerate(values):
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            problems.append(FieldProblem(f"{field}[{i}]", str(exc).splitlines()[0]))
            continue
        if req.marker is not None or req.url is not None:
            problems.append(FieldProblem(f"{field}[{i}]", "markers and URLs have no meaning here"))
            continue
        out.append(req)
    return out


def _duration(text: str, field: str, problems: list[FieldProblem]) -> _dt.timedelta | None:
    try:
        return parse_duration(text)
    except ValueError as exc:
        problems.append(FieldProblem(field, str(exc)))
        return None


def _min_age(
    raw: str | dict[str, Any] | None, problems: list[FieldProblem]
) -> tuple[_dt.timedelta | None, tuple[tuple[str, _dt.timedelta], ...], tuple[str, ...]]:
    if raw is None:
        return None, (), ()
    if isinstance(raw, str):
        return _duration(raw, "min_age", problems), (), ()
    default = raw.get("default")
    age = None if default is None else _duration(default, "min_age.default", problems)
    projects = []
    for pattern, text in raw.get("projects", {}).items():
        parsed = _duration(text, f"min_age.projects.{pattern}", problems)
        if parsed is not None:
            projects.append((canonicalize_name(pattern), parsed))
    exempt = tuple(canonicalize_name(p) for p in raw.get("exempt", []))
    return age, tuple(projects), exempt


def policy_from_dict(document: dict[str, Any], filename: str) -> Policy:
    """Validate a policy document (schema, then requirements and sizes) and parse it."""
    validate(document, "policy", filename)
    problems: list[FieldProblem] = []
    sizes: dict[str, int | None] = {}
    for key in ("max_file_size", "max_total_size"):
        raw = document.get(key)
        try:
            sizes[key] = None if raw is None else parse_size(raw)
        except ValueError as exc:
            problems.append(FieldProblem(key, str(exc)))
    min_age, min_age_projects, min_age_exempt = _min_age(document.get("min_age"), problems)
    required = document.get("require_attestations", False)
    if isinstance(required, bool):
        require_attestations: tuple[str, ...] = ("*",) if required else ()
    else:
        require_attestations = tuple(canonicalize_name(p) for p in required)
    publishers = tuple(
        (canonicalize_name(pattern), tuple(allowed))
        for pattern, allowed in document.get("publishers", {}).items()
    )
    deny = _requirements(document.get("deny", []), "deny", problems)
    pins = _requirements(document.get("pins", []), "pins", problems)
    if problems:
        raise FileFormatError(filename, problems)
    sdists = document.get("sdists", {})
    schemes = document.get("allowed_schemes")
    hosts = document.get("allowed_hosts")
    indexes = document.get("allowed_indexes")
    return Policy(
        allowed_schemes=None if schemes is None else frozenset(schemes),
        allowed_hosts=None if hosts is None else tuple(h.lower() for h in hosts),
        allowed_indexes=None if indexes is None else tuple(_norm_url(u) for u in indexes),
        require_hashes=document.get("require_hashes", False),
        yanked=document.get("yanked", "allow"),
        sdist_default=sdists.get("default", "allow"),
        sdist_allow=frozenset(canonicalize_name(n) for n in sdists.get("allow", [])),
        sdist_forbid=frozenset(canonicalize_name(n) for n in sdists.get("forbid", [])),
        allow_direct_urls=document.get("allow_direct_urls", True),
        allow_vcs=document.get("allow_vcs", True),
        max_file_size=sizes["max_file_size"],
        max_total_size=sizes["max_total_size"],
        deny=tuple(deny),
        pins=tuple(pins),
        deny_vulns=document.get("deny_vulns", False),
        max_severity=document.get("max_severity"),
        ignore_vulns=frozenset(document.get("ignore_vulns", [])),
        min_age=min_age,
        min_age_projects=min_age_projects,
        min_age_exempt=min_age_exempt,
        require_attestations=require_attestations,
        publishers=publishers,
        deny_project_status=frozenset(document.get("deny_project_status", [])),
    )


def load_policy(path: Path) -> Policy:
    """Read, validate and parse the policy file at ``path`` (YAML for .yaml/.yml, else JSON).

    Raises :class:`FileFormatError` naming the file and each bad field.
    """
    document = load_document(path, "policy")
    return policy_from_dict(document, str(path))


def _norm_url(url: str) -> str:
    return url.rstrip("/")


def host_allowed(url: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``url``'s host matches one of ``allowed`` (``host``, ``host:port``, ``*.dom``)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    bracketed = f"[{host}]" if ":" in host else host
    with_port = f"{bracketed}:{parts.port}" if parts.port is not None else None
    for entry in allowed:
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and host != entry[2:]:
                return True
        elif entry in {host, bracketed} or (with_port is not None and entry == with_port):
            return True
    return False


def _url_violations(policy: Policy, url: str, what: str, base: dict[str, Any]) -> list[Violation]:
    found: list[Violation] = []
    scheme = urlsplit(url).scheme.lower()
    if policy.allowed_schemes is not None and scheme not in policy.allowed_schemes:
        found.append(
            Violation(rule="allowed_schemes", message=f"{what} uses {scheme}: {url}", **base)
        )
    if (
        policy.allowed_hosts is not None
        and scheme != "file"
        and not host_allowed(url, policy.allowed_hosts)
    ):
        host = urlsplit(url).netloc
        found.append(
            Violation(rule="allowed_hosts", message=f"{what} host {host} is not allowed", **base)
        )
    return found


def _direct_kind(artifact: Artifact) -> str:
    if artifact.kind in SOURCE_TREE_KINDS:
        return "local directory" if artifact.kind == "directory" else "VCS commit"
    return "local archive" if artifact.path is not None else "URL"


def _age_violations(
    policy: Policy, artifact: Artifact, now: _dt.datetime, base: dict[str, Any]
) -> list[Violation]:
    required = policy.required_age(artifact.name)
    if required is None:
        return []
    if artifact.upload_time is None:
        message = "the index gave no upload time: its age cannot be checked"
        if artifact.direct:
            message = (
                f"a direct reference ({_direct_kind(artifact)}) has no upload "
                "time: its age cannot be checked (list it in min_age.exempt to accept it)"
            )
        return [Violation(rule="min_age", message=message, **base)]
    try:
        uploaded = parse_time(artifact.upload_time)
    except ValueError:
        return [
            Violation(
                rule="min_age", message=f"upload time {artifact.upload_time!r} unreadable", **base
            )
        ]
    age = now - uploaded
    if age >= required:
        return []
    ago = f"{format_duration(age)} ago" if age >= _dt.timedelta(0) else "in the future"
    return [
        Violation(
            rule="min_age",
            message=f"uploaded {artifact.upload_time} ({ago}), younger than "
            f"{format_duration(required)}",
            **base,
        )
    ]


def publisher_allowed(bundle: AttestationBundle, allowed: str) -> bool:
    """Whether ``bundle``'s verified publisher is the identity ``allowed`` names:
    ``github:org/repo`` (any workflow), ``github:org/repo:release.yml``, likewise ``gitlab:``;
    another kind by its whole identity. Kinds and repositories compare case-insensitively."""
    kind, _, rest = allowed.partition(":")
    publisher = bundle.publisher
    if (publisher.get("kind") or "").lower() != kind.lower():
        return False
    repository = publisher.get("repository")
    if repository is None:
        return bundle.identity.lower() == allowed.lower()
    wanted_repository, _, workflow = rest.partition(":")
    if repository.lower() != wanted_repository.lower():
        return False
    return not workflow or publisher.get("workflow") == workflow


def _unattested_reason(artifact: Artifact) -> str:
    if artifact.provenance is None:
        return "the index named no PEP 740 provenance for it"
    return "its attestations were not verified (plan with --attestations, or audit --attestations)"


def _attestation_violations(
    policy: Policy, artifact: Artifact, base: dict[str, Any]
) -> list[Violation]:
    found: list[Violation] = []
    allowed = policy.allowed_publishers(artifact.name)
    if not artifact.attestations:
        if policy.attestations_required(artifact.name):
            found.append(
                Violation(
                    rule="require_attestations",
                    message=f"no verified attestations: {_unattested_reason(artifact)}",
                    **base,
                )
            )
        if allowed is not None:
            found.append(
                Violation(
                    rule="publishers",
                    message="no verified attestations, so its publisher cannot be checked: "
                    + _unattested_reason(artifact),
                    **base,
                )
            )
        return found
    if allowed is None:
        return found
    for bundle in artifact.attestations:
        if not any(publisher_allowed(bundle, entry) for entry in allowed):
            found.append(
                Violation(
                    rule="publishers",
                    message=f"attested by {bundle.identity}, not by an allowed publisher "
                    f"({', '.join(allowed)})",
                    **base,
                )
            )
    return found


_Finding = Iterator[tuple[Rule, str]]
"""(rule, message) pairs a per-artifact rule finds."""


def _index_rule(policy: Policy, artifact: Artifact) -> _Finding:
    if (
        policy.allowed_indexes is not None
        and not artifact.direct  # no index: allow_direct_urls governs it
        and _norm_url(artifact.index) not in policy.allowed_indexes
    ):
        yield "allowed_indexes", f"from index {artifact.index}"


def _hash_rule(policy: Policy, artifact: Artifact) -> _Finding:
    if policy.require_hashes and artifact.sha256 is None:
        yield "require_hashes", "has no sha256"


def _yanked_rule(policy: Policy, artifact: Artifact) -> _Finding:
    if policy.yanked == "forbid" and artifact.yanked:
        reason = f" ({artifact.yanked_reason})" if artifact.yanked_reason else ""
        yield "yanked", f"is yanked{reason}"


def _sdist_rule(policy: Policy, artifact: Artifact) -> _Finding:
    if artifact.kind in BUILT_KINDS and not policy.sdist_allowed(artifact.name):
        what = "sdists" if artifact.kind == "sdist" else f"source builds ({artifact.kind})"
        yield "sdists", f"{what} of {artifact.name} are forbidden"


def _origin_rule(policy: Policy, artifact: Artifact) -> _Finding:
    if artifact.kind == "vcs" and not policy.allow_vcs:
        yield "allow_vcs", "is a VCS checkout (allow_vcs: false)"
    elif artifact.direct and not policy.allow_direct_urls:
        yield (
            "allow_direct_urls",
            "is a direct reference, not from an index (allow_direct_urls: false)",
        )


def _size_rule(policy: Policy, artifact: Artifact) -> _Finding:
    if policy.max_file_size is None:
        return
    if artifact.size is None:
        yield "max_file_size", "size unknown, cannot be checked"
    elif artifact.size > policy.max_file_size:
        yield "max_file_size", f"{artifact.size} bytes > {policy.max_file_size}"


def _version_rules(policy: Policy, artifact: Artifact) -> _Finding:
    version = artifact.parsed_version
    for req in policy.deny:
        if canonicalize_name(req.name) == artifact.name and req.specifier.contains(
            version, prereleases=True
        ):
            yield "deny", f"denied by {req}"
    for req in policy.pins:
        if canonicalize_name(req.name) == artifact.name and not req.specifier.contains(
            version, prereleases=True
        ):
            yield "pins", f"pinned to {req}"


def _status_rule(policy: Policy, artifact: Artifact) -> _Finding:
    status = artifact.project_status
    if status is not None and status.status in policy.deny_project_status:
        reason = f" ({status.reason})" if status.reason else ""
        yield "project_status", f"{artifact.name} is {status.status} on its index{reason}"


_RULES = (
    _index_rule,
    _hash_rule,
    _yanked_rule,
    _sdist_rule,
    _origin_rule,
    _size_rule,
    _version_rules,
)
"""The rules that need only the policy and the artifact, in the order they are reported."""


def _artifact_violations(policy: Policy, artifact: Artifact, now: _dt.datetime) -> list[Violation]:
    base: dict[str, Any] = {
        "filename": artifact.filename,
        "project": artifact.name,
        "version": artifact.version,
    }
    found = _url_violations(policy, artifact.url, "file URL", base)
    found.extend(
        Violation(rule=rule, message=message, **base)
        for check in _RULES
        for rule, message in check(policy, artifact)
    )
    found.extend(_age_violations(policy, artifact, now, base))
    found.extend(_attestation_violations(policy, artifact, base))
    found.extend(
        Violation(rule=rule, message=message, **base)
        for rule, message in _status_rule(policy, artifact)
    )
    return found


def check_policy(plan: Plan, policy: Policy, *, now: _dt.datetime | None = None) -> list[Violation]:
    """Every violation of ``policy`` by ``plan``: per artifact in plan order, then plan-wide.

    Pure but for the clock: looks at the plan only (URLs, hashes, flags, sizes and upload
    times it records); ``min_age`` measures ages at ``now`` (default: the current time).
    """
    when = now if now is not None else _dt.datetime.now(_dt.UTC)
    found: list[Violation] = []
    for index in plan.indexes:
        found.extend(_url_violations(policy, index.url, f"{index.kind}", {}))
        if (
            policy.allowed_indexes is not None
            and _norm_url(index.url) not in policy.allowed_indexes
        ):
            found.append(Violation(rule="allowed_indexes", message=f"plan uses {index.url}"))
    for artifact in plan.artifacts:
        found.extend(_artifact_violations(policy, artifact, when))
    if policy.max_total_size is not None:
        unknown = [a.filename for a in plan.artifacts if a.size is None]
        total = sum(a.size for a in plan.artifacts if a.size is not None)
        if unknown:
            found.append(
                Violation(
                    rule="max_total_size",
                    message=f"{len(unknown)} artifact(s) of unknown size, total cannot be checked",
                )
            )
        elif total > policy.max_total_size:
            found.append(
                Violation(
                    rule="max_total_size",
                    message=f"{total} bytes in all > {policy.max_total_size}",
                )
            )
    return found


def check_vulns(policy: Policy, findings: Sequence[VulnFinding] | None) -> list[Violation]:
    """Every breach of ``deny_vulns`` and ``max_severity`` by ``findings``.

    ``findings`` is None when no database was read: a policy with either rule is then broken
    once, as it cannot be checked. Findings whose id or an alias is in ``ignore_vulns`` are
    exempt.
    """
    if not policy.checks_vulns:
        return []
    rule: Rule = "deny_vulns" if policy.deny_vulns else "max_severity"
    if findings is None:
        return [Violation(rule=rule, message="no vulnerability database given (--vulns DB)")]
    from fetchplan.review.vulns import severity_exceeds

    found: list[Violation] = []
    for finding in findings:
        if policy.ignore_vulns & {finding.id, *finding.aliases}:
            continue
        base: dict[str, Any] = {
            "filename": finding.filename,
            "project": finding.project,
            "version": finding.version,
        }
        fixed = f", fixed in {', '.join(finding.fixed)}" if finding.fixed else ""
        severity = finding.level or "unknown severity"
        if policy.deny_vulns:
            found.append(
                Violation(
                    rule="deny_vulns",
                    message=f"affected by {finding.id} ({severity}{fixed})",
                    **base,
                )
            )
        elif policy.max_severity is not None and severity_exceeds(
            finding.level, policy.max_severity
        ):
            found.append(
                Violation(
                    rule="max_severity",
                    message=f"affected by {finding.id}: {severity} > {policy.max_severity}{fixed}",
                    **base,
                )
            )
    return found


def enforce_policy(
    plan: Plan, policy: Policy, source: str, *, now: _dt.datetime | None = None
) -> None:
    """Raise :class:`PolicyViolationError` (message naming ``source``) if ``plan`` breaks it."""
    violations = check_policy(plan, policy, now=now)
    if violations:
        raise PolicyViolationError(source, violations)
