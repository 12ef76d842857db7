"""Helpers every format shares: choosing a target's files, markers that tell targets apart."""

from __future__ import annotations

import datetime as _dt
import posixpath
import re
from collections.abc import Iterable, Sequence
from urllib.parse import unquote, urlsplit

from packaging.markers import default_environment
from packaging.tags import sys_tags
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

from fetchplan.errors import FetchplanError
from fetchplan.schemas.plan import (
    Artifact,
    ArtifactKind,
    IndexRef,
    Inputs,
    Plan,
    Target,
    version_problem,
)

__all__ = [
    "ENVIRONMENT_KEYS",
    "ExportError",
    "assemble_plan",
    "check_exportable",
    "check_url",
    "compatible",
    "current_target",
    "environment_marker",
    "filename_of",
    "installable",
    "kind_of",
    "origin_url",
    "pick_target",
    "select_for_target",
    "serves",
    "targets_marker",
    "timestamp_from_iso",
    "timestamp_to_iso",
    "utc_now",
]

# Marker variables that say which machines a plan's resolution holds for. Finer ones
# (platform_release, python_full_version...) would tie a lock file to one exact machine.
ENVIRONMENT_KEYS = ("implementation_name", "sys_platform", "platform_machine", "python_version")
FINE_KEYS = frozenset(
    {"python_full_version", "implementation_version", "platform_release", "platform_version"}
)
"""Marker variables whose values name one exact build or machine, not a kind of machine."""


class ExportError(FetchplanError):
    """A plan cannot be written in the requested format (the message names the artifact)."""


_NORMALIZED_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_EXTRA_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_URL_CHARS = re.compile(r"[A-Za-z0-9._~:/?#\[\]!$&'()*+,;=%-]*")


def check_exportable(artifact: Artifact) -> None:
    """Raise :class:`ExportError` naming ``artifact`` when a field that another tool parses
    cannot be written as it is: a name that is not a normalized PEP 503 name, a version that
    is not PEP 440 (or holds white space, which would start a new line of a requirements
    file), an extra that is not a PEP 508 name, a URL with characters RFC 3986 does not allow.

    Plans read from files are checked as strictly when read; this guards every writer
    against a plan built in memory (an import, a test) all the same.
    """
    what = artifact.filename
    if _NORMALIZED_NAME.fullmatch(artifact.name) is None:
        raise ExportError(f"{what}: name {artifact.name!r} is not a normalized project name")
    why = version_problem(artifact.version)
    if why is not None:
        raise ExportError(f"{what}: version {why}")
    for extra in artifact.extras:
        if _EXTRA_NAME.fullmatch(extra) is None:
            raise ExportError(f"{what}: extra {extra!r} is not a PEP 508 name")
    for label, url in (("url", artifact.url), ("index", artifact.index)):
        if _URL_CHARS.fullmatch(url) is None:
            raise ExportError(f"{what}: {label} {url!r} holds characters a URL cannot")


def check_url(url: str, what: str) -> str:
    """``url``, or :class:`ExportError` naming ``what`` when it holds characters RFC 3986
    does not allow (white space above all, which would end a line of a requirements file)."""
    if _URL_CHARS.fullmatch(url) is None:
        raise ExportError(f"{what}: {url!r} holds characters a URL cannot")
    return url


def utc_now() -> str:
    """The current UTC time as the plan schema's ``created`` wants it."""
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def timestamp_from_iso(value: str) -> _dt.datetime:
    """Parse an ISO 8601 time; a time without zone is taken as UTC."""
    parsed = _dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=_dt.UTC)


def timestamp_to_iso(value: _dt.datetime) -> str:
    """Render a time as ISO 8601, UTC written as ``Z`` the way indexes publish it."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return value.isoformat().replace("+00:00", "Z")


def current_target(name: str = "default") -> Target:
    """The running interpreter as a plan target: its marker values and supported tags."""
    return Target(
        name=name,
        markers={k: str(v) for k, v in default_environment().items()},
        tags=tuple(str(tag) for tag in sys_tags()),
    )


def filename_of(url: str) -> str:
    """The last path segment of ``url``, percent-decoded."""
    return unquote(posixpath.basename(urlsplit(url).path))


def kind_of(filename: str) -> ArtifactKind | None:
    """``wheel`` or ``sdist`` for a well-formed distribution filename, else None."""
    if filename.endswith(".whl"):
        try:
            parse_wheel_filename(filename)
        except InvalidWheelFilename:
            return None
        return "wheel"
    try:
        parse_sdist_filename(filename)
    except InvalidSdistFilename:
        return None
    return "sdist"


def serves(artifact: Artifact, target: str) -> bool:
    """True when ``artifact`` is part of what ``target`` needs (no target list means all)."""
    return artifact.targets is None or target in artifact.targets


def installable(plan: Plan) -> list[Artifact]:
    """The artifacts that end up installed: everything but build dependencies."""
    return [a for a in plan.artifacts if not a.build_dependency]


def pick_target(plan: Plan, name: str | None) -> Target:
    """The plan's target called ``name``; with None, the plan's only target."""
    if name is None:
        if len(plan.targets) == 1:
            return plan.targets[0]
        names = ", ".join(t.name for t in plan.targets)
        raise ExportError(f"the plan has several targets ({names}): choose one")
    for target in plan.targets:
        if target.name == name:
            return target
    names = ", ".join(t.name for t in plan.targets)
    raise ExportError(f"the plan has no target {name!r} (it has {names})")


def _tag_rank(artifact: Artifact, tags: Sequence[str]) -> int | None:
    if artifact.kind != "wheel":
        return None
    try:
        file_tags = parse_wheel_filename(artifact.filename)[3]
    except InvalidWheelFilename:
        return None
    order = {tag: i for i, tag in enumerate(tags)}
    ranks = [order[str(t)] for t in file_tags if str(t) in order]
    return min(ranks) if ranks else None


def compatible(artifact: Artifact, target: Target) -> bool:
    """True for an sdist, or a wheel one of whose tags ``target`` supports."""
    return artifact.kind == "sdist" or _tag_rank(artifact, target.tags) is not None


def select_for_target(artifacts: Iterable[Artifact], target: Target) -> list[Artifact]:
    """One artifact per project for ``target``: its best-ranked wheel, else its sdist.

    Artifacts restricted to other targets are left out; the order of first appearance of
    each project is kept.
    """
    by_name: dict[str, list[Artifact]] = {}
    for artifact in artifacts:
        if serves(artifact, target.name):
            by_name.setdefault(artifact.name, []).append(artifact)
    chosen: list[Artifact] = []
    for candidates in by_name.values():
        ranked = [(r, a) for a in candidates if (r := _tag_rank(a, target.tags)) is not None]
        if ranked:
            chosen.append(min(ranked, key=lambda pair: pair[0])[1])
            continue
        sdists = [a for a in candidates if a.kind == "sdist"]
        chosen.append(sdists[0] if sdists else candidates[0])
    return chosen


def targets_marker(all_targets: Sequence[Target], served: Iterable[str], what: str) -> str | None:
    """A PEP 508 marker true on the ``served`` targets and false on the plan's others.

    Only marker variables whose values differ between the plan's targets are used, so the
    marker never excludes a machine the plan did not distinguish. None means "everywhere".
    Raises :class:`ExportError` (naming ``what``) when no marker variable tells the served
    targets from the others.
    """
    served_set = set(served)
    if served_set >= {t.name for t in all_targets}:
        return None
    differing = sorted(
        key
        for key in set.intersection(*(set(t.markers) for t in all_targets))
        if len({t.markers[key] for t in all_targets}) > 1
    )
    # A target planned for "3.10" records python_full_version 3.10.0; a marker on that value
    # would be false on every real 3.10.x. Exact values are used only when nothing coarser
    # tells the targets apart.
    coarse = [k for k in differing if k not in FINE_KEYS]
    keys = coarse if _tells_apart(all_targets, served_set, coarse) else differing
    if not _tells_apart(all_targets, served_set, keys):
        raise ExportError(
            f"{what}: serves only targets {sorted(served_set)}, which no marker value tells "
            "apart from the plan's other targets"
        )
    clauses = []
    for target in all_targets:
        if target.name in served_set:
            terms = " and ".join(f"{k} == {_quote(target.markers[k])}" for k in keys)
            clauses.append(f"({terms})" if len(keys) > 1 and len(served_set) > 1 else terms)
    return " or ".join(clauses)


def _tells_apart(all_targets: Sequence[Target], served: set[str], keys: Sequence[str]) -> bool:
    """Whether equality on ``keys`` tells every served target from every other one."""
    if not keys:
        return False
    values = {t.name: tuple(t.markers[k] for k in keys) for t in all_targets}
    wanted = {values[name] for name in served if name in values}
    return all(values[t.name] not in wanted for t in all_targets if t.name not in served)


def environment_marker(target: Target) -> str | None:
    """A marker naming the kind of machine ``target`` describes (see ENVIRONMENT_KEYS)."""
    terms = [f"{k} == {_quote(target.markers[k])}" for k in ENVIRONMENT_KEYS if k in target.markers]
    return " and ".join(terms) if terms else None


def _quote(value: str) -> str:
    """``value`` as a PEP 508 marker string, or :class:`ExportError` when no quoting can
    hold it (both kinds of quote, or a control character such as a newline)."""
    if ('"' in value and "'" in value) or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ExportError(f"marker value {value!r} cannot be written in a PEP 508 marker")
    return "'" + value + "'" if '"' in value else '"' + value + '"'


def origin_url(url: str) -> str:
    """``scheme://host[:port]/`` of ``url``: what stands for an index a format does not name."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def assemble_plan(
    artifacts: Sequence[Artifact],
    target: Target,
    *,
    created: str,
    destination: str,
    indexes: Sequence[IndexRef] = (),
) -> Plan:
    """A single-target plan over imported ``artifacts``.

    ``indexes`` come first in the plan's index list, then each artifact's index in order of
    appearance. The inputs are the requested projects pinned to their versions.
    """
    refs: dict[str, IndexRef] = {}
    for ref in [*indexes, *(IndexRef(url=a.index) for a in artifacts)]:
        refs.setdefault(ref.url, ref)
    requirements = tuple(
        f"{a.name}{'[' + ','.join(a.extras) + ']' if a.extras else ''}=={a.version}"
        for a in artifacts
        if a.requested
    )
    return Plan(
        created=created,
        inputs=Inputs(requirements=requirements),
        targets=(target,),
        indexes=tuple(refs.values()),
        destination=destination,
        artifacts=tuple(artifacts),
    )
