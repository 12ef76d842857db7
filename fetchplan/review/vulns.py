"""Known vulnerabilities of a plan's artifacts, from an OSV database read offline.

OSV publishes each ecosystem's advisories as ``all.zip``, one ``<ID>.json`` record each (the
OSV schema). :func:`load_osv_database` reads such a zip or a directory of records, bounded in
record count and size, and parses every record (one-line errors name the file and field);
:func:`find_vulnerabilities` then lists, per planned artifact, each advisory that affects it,
matched the way OSV and pip-audit match:

- ``affected[].package`` of ecosystem ``PyPI`` whose name canonicalizes (PEP 503) to the
  artifact's;
- the version is in the explicit ``versions`` list, or inside a range: ``ECOSYSTEM`` ranges
  compare PEP 440 versions, ``SEMVER`` ranges SemVer 2.0 precedence; the events are sorted by
  version and walked in order (``introduced`` opens, ``fixed`` closes at that version,
  ``last_affected`` closes after it, ``limit`` bounds the whole range); ``GIT`` ranges name
  commits, which a plan does not know, and are not used;
- ``withdrawn`` advisories are ignored; advisories that are aliases of each other (the PYSEC,
  GHSA and CVE records of one vulnerability) are one finding for an artifact.

The severity of a finding is the highest of the record's CVSS vectors (v2, v3, v4 base
scores, computed with the ``cvss`` library), else the qualitative ``database_specific``
severity that GitHub's advisories carry, rated on CVSS v3's scale (low < 4.0 <= medium < 7.0
<= high < 9.0 <= critical). Everything here is pure but :func:`load_osv_database`.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from fetchplan.errors import FieldProblem, FileFormatError, InputError
from fetchplan.schemas.plan import Artifact

__all__ = [
    "ECOSYSTEM",
    "LEVELS",
    "MAX_DATABASE_BYTES",
    "MAX_RECORDS",
    "MAX_RECORD_BYTES",
    "Advisory",
    "Affected",
    "Event",
    "Level",
    "VersionRange",
    "VulnFinding",
    "advisory_from_dict",
    "affects",
    "describe",
    "find_vulnerabilities",
    "level_of_score",
    "load_osv_database",
    "range_affects",
    "semver_key",
    "severity_exceeds",
]

ECOSYSTEM = "PyPI"
MAX_RECORD_BYTES = 16 * 2**20
"""The largest record read; real ones are a few kB, the largest some hundreds."""
MAX_RECORDS = 1_000_000
"""More records than this is not an OSV export of one ecosystem (PyPI has tens of thousands)."""
MAX_DATABASE_BYTES = 4 * 2**30
"""The most bytes of records read in all (PyPI's export is some hundreds of MB unpacked)."""

Level = Literal["none", "low", "medium", "high", "critical"]
LEVELS: tuple[Level, ...] = get_args(Level)
EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
_EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)
RangeKind = Literal["ECOSYSTEM", "SEMVER"]

# SemVer 2.0's own grammar (semver.org), without the leading "v" some tools add.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_QUALITATIVE: dict[str, Level] = {
    "none": "none",
    "negligible": "low",
    "low": "low",
    "moderate": "medium",
    "medium": "medium",
    "high": "high",
    "important": "high",
    "critical": "critical",
}

SemverKey = tuple[int, int, int, tuple[Any, ...]]


def semver_key(text: str) -> SemverKey | None:
    """The SemVer 2.0 precedence of ``text`` as a sortable key, or None if it is not SemVer.

    A release sorts after its pre-releases; pre-release identifiers compare numerically when
    numeric, else in ASCII order, numeric before alphanumeric; build metadata is ignored.
    """
    match = _SEMVER.match(text)
    if match is None:
        return None
    major, minor, patch, pre = match.group(1, 2, 3, 4)
    if pre is None:
        rank: tuple[Any, ...] = (1,)
    else:
        rank = (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))
    return (int(major), int(minor), int(patch), rank)


def _coerce_semver(version: Version) -> SemverKey:
    """A PEP 440 version as SemVer: release padded to three numbers, pre/dev as pre-release.

    OSV's own matcher coerces versions that are not SemVer the same way (missing minor and
    patch are 0). A post-release has no SemVer form and sorts as its release.
    """
    release = (*version.release, 0, 0)[:3]
    pre: list[str] = []
    if version.pre is not None:
        pre += [version.pre[0], str(version.pre[1])]
    if version.dev is not None:
        pre += ["dev", str(version.dev)]
    text = ".".join(str(n) for n in release) + ("-" + ".".join(pre) if pre else "")
    key = semver_key(text)
    if key is None:  # pragma: no cover - built from digits and letters only
        raise AssertionError(text)
    return key


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """One ``events[]`` entry; ``version`` is ``"0"`` for "introduced from the start"."""

    kind: EventKind
    version: str


@dataclass(frozen=True, kw_only=True, slots=True)
class VersionRange:
    """An ``ECOSYSTEM`` or ``SEMVER`` range; ``events`` as the record lists them."""

    kind: RangeKind
    events: tuple[Event, ...]

    @property
    def fixed(self) -> tuple[str, ...]:
        return tuple(e.version for e in self.events if e.kind == "fixed")


@dataclass(frozen=True, kw_only=True, slots=True)
class Affected:
    """One ``affected[]`` entry of the PyPI ecosystem."""

    name: NormalizedName
    ranges: tuple[VersionRange, ...] = ()
    versions: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Advisory:
    """The parts of one OSV record that matching and reporting use."""

    id: str
    source: str
    """The file (and zip member) the record was read from."""
    modified: str
    aliases: tuple[str, ...] = ()
    summary: str | None = None
    withdrawn: str | None = None
    affected: tuple[Affected, ...] = ()
    score: float | None = None
    """The highest CVSS base score of the record, when it has a CVSS vector."""
    level: Level | None = None
    """The rating of ``score``, else of the record's qualitative severity; None if it has none."""


@dataclass(frozen=True, kw_only=True, slots=True)
class VulnFinding:
    """An advisory that affects one planned artifact."""

    project: str
    version: str
    filename: str
    id: str
    aliases: tuple[str, ...]
    summary: str | None
    fixed: tuple[str, ...]
    """Versions the matching ranges name as fixed, in PEP 440 order where they parse."""
    level: Level | None
    score: float | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "version": self.version,
            "filename": self.filename,
            "id": self.id,
            "aliases": list(self.aliases),
            "summary": self.summary,
            "fixed": list(self.fixed),
            "severity": self.level,
            "score": self.score,
            "source": self.source,
        }


def level_of_score(score: float) -> Level:
    """CVSS v3's qualitative rating of a base score."""
    if score == 0:
        return "none"
    if score < 4.0:
        return "low"
    if score < 7.0:
        return "medium"
    if score < 9.0:
        return "high"
    return "critical"


def _ecosystem_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def range_affects(rng: VersionRange, version: Version) -> bool:
    """Whether ``version`` lies inside ``rng`` (OSV's evaluation of a range's events).

    The events' versions must parse in the range's kind (:func:`advisory_from_dict` checks).
    """
    if rng.kind == "ECOSYSTEM":

        def key(text: str) -> Any:
            parsed = _ecosystem_version(text)
            if parsed is None:
                raise ValueError(f"not a PEP 440 version: {text!r}")
            return parsed

        here: Any = version
    else:

        def key(text: str) -> Any:
            parsed = semver_key(text)
            if parsed is None:
                raise ValueError(f"not a SemVer version: {text!r}")
            return parsed

        here = _coerce_semver(version)
    bounds = []
    for event in rng.events:
        if event.kind == "limit":
            if event.version != "*" and here >= key(event.version):
                return False
            continue
        bounds.append(event)

    def order(event: Event) -> tuple[int, Any]:
        # "introduced 0" is before every version, in either kind; ties keep the record's order.
        if event.kind == "introduced" and event.version == "0":
            return (0, 0)
        return (1, key(event.version))

    ordered = sorted(bounds, key=order)
    affected = False
    for event in ordered:
        if event.kind == "introduced":
            if event.version == "0" or here >= key(event.version):
                affected = True
        elif event.kind == "fixed":
            if here >= key(event.version):
                affected = False
        elif here > key(event.version):
            affected = False
    return affected


def affects(entry: Affected, version: Version) -> bool:
    """Whether ``version`` of ``entry``'s package is affected: listed, or in a range."""
    for listed in entry.versions:
        parsed = _ecosystem_version(listed)
        if (parsed == version) if parsed is not None else (listed == str(version)):
            return True
    return any(range_affects(r, version) for r in entry.ranges)


def _sorted_versions(versions: Iterable[str]) -> tuple[str, ...]:
    unique = list(dict.fromkeys(versions))
    parsed = [(v, _ecosystem_version(v)) for v in unique]
    good = sorted((p, v) for v, p in parsed if p is not None)
    return tuple(v for _, v in good) + tuple(v for v, p in parsed if p is None)


def _preference(advisory: Advisory) -> tuple[bool, str]:
    # The PyPA advisory database (PYSEC-) is the ecosystem's own; others by id.
    return (not advisory.id.startswith("PYSEC-"), advisory.id)


def _merge(artifact: Artifact, group: list[tuple[Advisory, list[str]]]) -> VulnFinding:
    first = group[0][0]
    aliases = sorted({n for a, _ in group for n in (a.id, *a.aliases)} - {first.id})
    scores = [a.score for a, _ in group if a.score is not None]
    levels = [a.level for a, _ in group if a.level is not None]
    return VulnFinding(
        project=artifact.name,
        version=artifact.version,
        filename=artifact.filename,
        id=first.id,
        aliases=tuple(aliases),
        summary=first.summary or next((a.summary for a, _ in group if a.summary), None),
        fixed=_sorted_versions(v for _, fixed in group for v in fixed),
        level=max(levels, key=LEVELS.index) if levels else None,
        score=max(scores) if scores else None,
        source=first.source,
    )


def find_vulnerabilities(
    artifacts: Iterable[Artifact], advisories: Iterable[Advisory]
) -> tuple[VulnFinding, ...]:
    """Every advisory that affects each artifact, in plan order.

    Withdrawn advisories are skipped. Advisories that name each other (by id or a shared
    alias, as PYSEC, GHSA and CVE ids of one vulnerability do) are one finding: named by the
    PYSEC record when there is one, with every other id as an alias, the fixed versions of
    all and the highest severity.
    """
    by_name: dict[str, list[tuple[Advisory, Affected]]] = {}
    for advisory in sorted(advisories, key=_preference):
        if advisory.withdrawn is not None:
            continue
        for entry in advisory.affected:
            by_name.setdefault(entry.name, []).append((advisory, entry))
    found: list[VulnFinding] = []
    for artifact in artifacts:
        version = artifact.parsed_version
        matched: dict[str, tuple[Advisory, list[str]]] = {}
        for advisory, entry in by_name.get(artifact.name, []):
            if affects(entry, version):
                fixed = matched.setdefault(advisory.id, (advisory, []))[1]
                fixed.extend(v for r in entry.ranges for v in r.fixed)
        groups: list[tuple[set[str], list[tuple[Advisory, list[str]]]]] = []
        for advisory, fixed in matched.values():
            names = {advisory.id, *advisory.aliases}
            joined = [g for g in groups if g[0] & names]
            if not joined:
                groups.append((names, [(advisory, fixed)]))
                continue
            # An advisory may bridge two groups: fold them into the first.
            target = joined[0]
            target[0].update(names)
            target[1].append((advisory, fixed))
            for other in joined[1:]:
                target[0].update(other[0])
                target[1].extend(other[1])
                groups.remove(other)
        for _, group in groups:
            group.sort(key=lambda pair: _preference(pair[0]))
            found.append(_merge(artifact, group))
    return tuple(found)


# Parsing records.


class _Problems:
    def __init__(self) -> None:
        self.items: list[FieldProblem] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(FieldProblem(path, message))


def _string(d: dict[str, Any], key: str, path: str, problems: _Problems) -> str | None:
    value = d.get(key)
    if value is not None and not isinstance(value, str):
        problems.add(f"{path}{key}", "must be a string")
        return None
    return value


def _strings(d: dict[str, Any], key: str, path: str, problems: _Problems) -> tuple[str, ...]:
    value = d.get(key, [])
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(f"{path}{key}", "must be a list of strings")
        return ()
    return tuple(value)


def _objects(
    d: dict[str, Any], key: str, path: str, problems: _Problems
) -> Iterator[tuple[str, dict[str, Any]]]:
    value = d.get(key, [])
    if value is None:
        return
    if not isinstance(value, list):
        problems.add(f"{path}{key}", "must be a list")
        return
    for i, item in enumerate(value):
        where = f"{path}{key}[{i}]"
        if isinstance(item, dict):
            yield where, item
        else:
            problems.add(where, "must be an object")


def _events(
    rng: dict[str, Any], kind: RangeKind, where: str, problems: _Problems
) -> tuple[Event, ...]:
    events: list[Event] = []
    for at, item in _objects(rng, "events", f"{where}.", problems):
        keys = [k for k in _EVENT_KINDS if k in item]
        if len(keys) != 1:
            problems.add(at, f"must have exactly one of {', '.join(_EVENT_KINDS)}")
            continue
        event_kind = keys[0]
        value = item[event_kind]
        if not isinstance(value, str):
            problems.add(f"{at}.{event_kind}", "must be a string")
            continue
        ok = (
            (event_kind == "introduced" and value == "0")
            or (event_kind == "limit" and value == "*")
            or (
                _ecosystem_version(value) is not None
                if kind == "ECOSYSTEM"
                else semver_key(value) is not None
            )
        )
        if not ok:
            what = "a PEP 440 version" if kind == "ECOSYSTEM" else "a SemVer 2.0 version"
            problems.add(f"{at}.{event_kind}", f"{value!r} is not {what}")
            continue
        events.append(Event(kind=event_kind, version=value))
    if not any(e.kind == "introduced" for e in events) and not problems.items:
        problems.add(f"{where}.events", "has no introduced event")
    return tuple(events)


def _affected(
    entry: dict[str, Any], where: str, projects: Collection[str] | None, problems: _Problems
) -> Affected | None:
    package = entry.get("package")
    if package is None:
        return None  # a GIT-only entry names a repository, not a package
    if not isinstance(package, dict):
        problems.add(f"{where}.package", "must be an object")
        return None
    ecosystem = _string(package, "ecosystem", f"{where}.package.", problems)
    name = _string(package, "name", f"{where}.package.", problems)
    if ecosystem is None or name is None:
        if not problems.items:
            problems.add(f"{where}.package", "needs ecosystem and name")
        return None
    if ecosystem != ECOSYSTEM:
        return None
    canonical = canonicalize_name(name)
    if projects is not None and canonical not in projects:
        return None
    ranges: list[VersionRange] = []
    for at, rng in _objects(entry, "ranges", f"{where}.", problems):
        kind = rng.get("type")
        if kind == "GIT":
            continue
        if kind not in ("ECOSYSTEM", "SEMVER"):
            problems.add(f"{at}.type", f"must be ECOSYSTEM, SEMVER or GIT, not {kind!r}")
            continue
        ranges.append(VersionRange(kind=kind, events=_events(rng, kind, at, problems)))
    versions = _strings(entry, "versions", f"{where}.", problems)
    return Affected(name=canonical, ranges=tuple(ranges), versions=versions)


def _severity(document: dict[str, Any], problems: _Problems) -> tuple[float | None, Level | None]:
    from cvss import CVSS2, CVSS3, CVSS4, CVSSError

    scores: list[float] = []
    levels: list[Level] = []
    blocks = [("", document)] + [
        (f"affected[{i}].", a)
        for i, a in enumerate(document.get("affected") or [])
        if isinstance(a, dict)
    ]
    for path, block in blocks:
        for at, item in _objects(block, "severity", path, problems):
            kind, score = item.get("type"), item.get("score")
            if not isinstance(kind, str) or not isinstance(score, str):
                problems.add(at, "needs a type and a score, both strings")
                continue
            if kind == "Ubuntu":
                if score.lower() in _QUALITATIVE:
                    levels.append(_QUALITATIVE[score.lower()])
                continue
            parser = {"CVSS_V2": CVSS2, "CVSS_V3": CVSS3, "CVSS_V4": CVSS4}.get(kind)
            if parser is None:
                continue  # a later schema's kind: not understood, not fatal
            try:
                scores.append(float(parser(score).base_score))
            except (CVSSError, ValueError, KeyError) as exc:
                problems.add(f"{at}.score", f"not a {kind} vector: {score!r} ({exc})")
    specific = document.get("database_specific")
    if isinstance(specific, dict) and isinstance(specific.get("severity"), str):
        text = specific["severity"].lower()
        if text in _QUALITATIVE:
            levels.append(_QUALITATIVE[text])
    if scores:
        best = max(scores)
        return best, level_of_score(best)
    if levels:
        return None, max(levels, key=LEVELS.index)
    return None, None


def advisory_from_dict(
    document: Any, source: str, projects: Collection[str] | None = None
) -> Advisory | None:
    """Parse one OSV record read from ``source``.

    ``affected`` entries of other ecosystems, or (when ``projects`` is given) of projects not
    in it, are dropped unread; None when nothing is left. Raises :class:`FileFormatError`
    naming ``source`` and each bad field.
    """
    problems = _Problems()
    if not isinstance(document, dict):
        raise FileFormatError(source, [FieldProblem("", "an OSV record must be a JSON object")])
    ident = _string(document, "id", "", problems)
    modified = _string(document, "modified", "", problems)
    for key, value in (("id", ident), ("modified", modified)):
        if value is None and key not in {p.path for p in problems.items}:
            problems.add(key, "is required")
    aliases = _strings(document, "aliases", "", problems)
    summary = _string(document, "summary", "", problems)
    withdrawn = _string(document, "withdrawn", "", problems)
    affected = []
    for at, entry in _objects(document, "affected", "", problems):
        parsed = _affected(entry, at, projects, problems)
        if parsed is not None:
            affected.append(parsed)
    if problems.items:
        raise FileFormatError(source, problems.items)
    if not affected:
        return None
    score, level = _severity(document, problems)
    if problems.items:
        raise FileFormatError(source, problems.items)
    assert ident is not None and modified is not None
    return Advisory(
        id=ident,
        source=source,
        modified=modified,
        aliases=aliases,
        summary=summary,
        withdrawn=withdrawn,
        affected=tuple(affected),
        score=score,
        level=level,
    )


# Reading a database.


def _parse_json(data: bytes, source: str) -> Any:
    import json

    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FileFormatError(source, [FieldProblem("", f"not JSON: {exc}")]) from exc


def _too_big(source: str, size: int) -> FileFormatError:
    return FileFormatError(
        source, [FieldProblem("", f"{size} bytes, more than an OSV record ({MAX_RECORD_BYTES})")]
    )


def _zip_records(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: not a readable zip of OSV records: {exc}") from exc
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and m.filename.endswith(".json")]
        if len(members) > MAX_RECORDS:
            raise InputError(f"{path}: {len(members)} records, more than {MAX_RECORDS}")
        for member in members:
            source = f"{path}:{member.filename}"
            if member.file_size > MAX_RECORD_BYTES:
                raise _too_big(source, member.file_size)
            try:
                with archive.open(member) as stream:
                    # The declared size may lie: never inflate more than the bound.
                    data = stream.read(MAX_RECORD_BYTES + 1)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise InputError(f"{source}: unreadable: {exc}") from exc
            if len(data) > MAX_RECORD_BYTES:
                raise _too_big(source, len(data))
            yield source, data


def _directory_records(path: Path) -> Iterator[tuple[str, bytes]]:
    files = sorted(p for p in path.rglob("*.json") if p.is_file())
    if len(files) > MAX_RECORDS:
        raise InputError(f"{path}: {len(files)} records, more than {MAX_RECORDS}")
    for file in files:
        size = file.stat().st_size
        if size > MAX_RECORD_BYTES:
            raise _too_big(str(file), size)
        with file.open("rb") as stream:
            data = stream.read(MAX_RECORD_BYTES + 1)
        if len(data) > MAX_RECORD_BYTES:
            raise _too_big(str(file), len(data))
        yield str(file), data


def load_osv_database(path: Path, projects: Collection[str] | None = None) -> tuple[Advisory, ...]:
    """The PyPI advisories of the OSV database at ``path``: a zip or directory of records.

    Every ``*.json`` record is parsed and checked; only ``affected`` entries about
    ``projects`` (canonical names; all when None) are kept. A record that is not JSON, breaks
    the OSV schema in a field matching uses, or is over :data:`MAX_RECORD_BYTES` is an error
    naming the file (``zip:member`` inside a zip) and the field; more than
    :data:`MAX_RECORDS` records or :data:`MAX_DATABASE_BYTES` bytes in all is refused.
    """
    wanted = None if projects is None else frozenset(canonicalize_name(p) for p in projects)
    if path.is_dir():
        records: Iterator[tuple[str, bytes]] = _directory_records(path)
    elif path.is_file():
        records = _zip_records(path)
    else:
        raise InputError(f"{path}: no such OSV database (a zip or a directory of records)")
    found: list[Advisory] = []
    total = 0
    for source, data in records:
        total += len(data)
        if total > MAX_DATABASE_BYTES:
            raise InputError(f"{path}: more than {MAX_DATABASE_BYTES} bytes of OSV records")
        advisory = advisory_from_dict(_parse_json(data, source), source, wanted)
        if advisory is not None:
            found.append(advisory)
    return tuple(found)


def severity_exceeds(level: Level | None, limit: Level) -> bool:
    """Whether a finding of ``level`` breaks ``max_severity: limit`` (unknown always does)."""
    return level is None or LEVELS.index(level) > LEVELS.index(limit)


def describe(findings: Sequence[VulnFinding]) -> list[list[str]]:
    """Table rows of ``findings`` for the text report."""
    return [
        [
            f.project,
            f.version,
            f.id,
            ", ".join(f.aliases),
            f.level or "unknown",
            ", ".join(f.fixed) or "(none)",
            f.summary or "",
        ]
        for f in findings
    ]
