"""pip's installation report (``pip install --dry-run --report``, format version "1").

Export writes what pip fills for an index install: ``download_info`` (PEP 610: url and
``archive_info`` hashes), ``is_direct``, ``is_yanked``, ``requested``, ``requested_extras``,
``metadata`` in its PEP 566 JSON form and ``environment`` (the target's marker values).

``metadata`` is the core metadata the planner recorded for the artifact (its PEP 566 JSON
form, every declared ``requires_dist`` entry included, as pip shows it; only the description
is left out). A plan without it (written by an older fetchplan, or imported from a format
that has none) gets what the plan knows: ``metadata_version`` "2.1", ``name`` (normalized),
``version``, ``requires_python``, ``requires_dist`` (the dependencies the plan recorded, not
every one the project declares) and ``provides_extra`` (the extras those name). Fields pip's
format has no room for (size, index, upload time...) go under a ``fetchplan`` key of each
item, and the target under a top-level ``fetchplan`` key, so that a round trip loses nothing;
pip's own consumers ignore unknown keys. Import keeps a report's metadata (without the
description) as the artifacts' ``metadata``, except what an export made up (its item's
``fetchplan.metadata_recorded`` is false).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from fetchplan import __version__
from fetchplan._urls import split_credentials
from fetchplan.errors import FieldProblem, FileFormatError
from fetchplan.formats._common import (
    assemble_plan,
    check_exportable,
    filename_of,
    installable,
    kind_of,
    origin_url,
    pick_target,
    select_for_target,
)
from fetchplan.schemas.directurl import direct_url
from fetchplan.schemas.plan import Artifact, Dependency, Plan, Target

__all__ = ["REPORT_VERSION", "embedded_targets", "from_pip_report", "to_pip_report"]

REPORT_VERSION = "1"
# Of the fallback metadata: the oldest version with every field it writes.
_METADATA_VERSION = "2.1"
_JSON_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_EXTRA_IN_MARKER = re.compile(r'\bextra == "([^"]+)"')


def _provides_extra(artifact: Artifact) -> list[str]:
    extras = set(artifact.extras)
    for dep in artifact.dependencies:
        try:
            marker = Requirement(dep.requirement).marker
        except InvalidRequirement:
            continue
        if marker is not None:
            extras.update(_extras_in_marker(marker))
    return sorted(extras)


def _extras_in_marker(marker: Marker) -> set[str]:
    # packaging renders every comparison as ``extra == "name"``, the variable on the left.
    return set(_EXTRA_IN_MARKER.findall(str(marker)))


def _metadata(artifact: Artifact) -> dict[str, Any]:
    if artifact.metadata is not None:
        return {k: list(v) if isinstance(v, list) else v for k, v in artifact.metadata.items()}
    metadata: dict[str, Any] = {
        "metadata_version": _METADATA_VERSION,
        "name": artifact.name,
        "version": artifact.version,
    }
    if artifact.requires_python is not None:
        metadata["requires_python"] = artifact.requires_python
    if artifact.dependencies:
        metadata["requires_dist"] = [dep.requirement for dep in artifact.dependencies]
    provides = _provides_extra(artifact)
    if provides:
        metadata["provides_extra"] = provides
    return metadata


def _kept_metadata(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """A report's metadata as a plan records it (no description), or None when it does not
    have the shape of PEP 566 JSON (the plan's schema would refuse it)."""
    kept: dict[str, Any] = {}
    for key, value in metadata.items():
        if key == "description":
            continue
        if not isinstance(key, str) or _JSON_KEY.match(key) is None:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            kept[key] = list(value)
        elif isinstance(value, str):
            kept[key] = value
        else:
            return None
    if not all(isinstance(kept.get(k), str) for k in ("metadata_version", "name", "version")):
        return None
    return kept


def _item(artifact: Artifact) -> dict[str, Any]:
    item: dict[str, Any] = {
        "download_info": direct_url(artifact),
        "is_direct": artifact.direct,
        "is_yanked": artifact.yanked,
        "requested": artifact.requested,
        "metadata": _metadata(artifact),
    }
    if artifact.requested and artifact.extras:
        item["requested_extras"] = sorted(artifact.extras)
    item["fetchplan"] = {
        "filename": artifact.filename,
        "index": artifact.index,
        "size": artifact.size,
        "hash_source": artifact.hash_source,
        "yanked_reason": artifact.yanked_reason,
        "upload_time": artifact.upload_time,
        "provenance": artifact.provenance,
        "extras": list(artifact.extras),
        "destination": artifact.destination,
        "metadata_recorded": artifact.metadata is not None,
    }
    if artifact.path is not None:
        item["fetchplan"]["path"] = artifact.path
    return item


def to_pip_report(plan: Plan, target: str | None = None) -> dict[str, Any]:
    """The installation report pip would write for ``plan``'s ``target``.

    ``target`` names one of the plan's targets and may be None when there is only one. One
    file per project is reported (the best wheel for the target, else the sdist); build
    dependencies are left out, as pip does not install them.
    """
    chosen = pick_target(plan, target)
    artifacts = select_for_target(installable(plan), chosen)
    for artifact in artifacts:
        check_exportable(artifact)
    return {
        "version": REPORT_VERSION,
        "pip_version": f"fetchplan {__version__}",
        "install": [_item(a) for a in artifacts],
        "environment": dict(chosen.markers),
        "fetchplan": {"target": chosen.to_dict()},
    }


def embedded_targets(document: Any) -> tuple[Target, ...]:
    """The plan target a fetchplan-written report records (none for pip's own reports)."""
    extension = document.get("fetchplan") if isinstance(document, dict) else None
    raw = extension.get("target") if isinstance(extension, dict) else None
    if not isinstance(raw, dict):
        return ()
    try:
        return (Target.from_dict(raw),)
    except (KeyError, TypeError, ValueError):
        return ()


class _Reader:
    """Pulls typed fields out of the report, collecting every problem with its path."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.problems: list[FieldProblem] = []

    def get(self, d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], path: str) -> Any:
        value = d.get(key)
        if value is None:
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problems.append(FieldProblem(f"{path}.{key}", "wrong type"))
            return None
        return value

    def need(self, d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], path: str) -> Any:
        if d.get(key) is None:
            self.problems.append(FieldProblem(f"{path}.{key}", "missing required field"))
            return None
        return self.get(d, key, kind, path)

    def fail(self) -> None:
        if self.problems:
            raise FileFormatError(self.filename, self.problems)


def _hashes(archive_info: Mapping[str, Any]) -> dict[str, str]:
    hashes = archive_info.get("hashes")
    if isinstance(hashes, dict) and hashes:
        return {str(k).lower(): str(v).lower() for k, v in hashes.items()}
    legacy = archive_info.get("hash")
    if isinstance(legacy, str) and "=" in legacy:
        algorithm, _, digest = legacy.partition("=")
        return {algorithm.lower(): digest.lower()}
    return {}


def _active_extras(
    items: list[tuple[str, list[Requirement], set[str]]], environment: Mapping[str, str]
) -> dict[str, set[str]]:
    """Which extras each project is installed with: requested ones, then what others ask."""
    extras = {name: set(requested) for name, _, requested in items}
    changed = True
    while changed:
        changed = False
        for name, requirements, _ in items:
            for req in requirements:
                if not _applies(req, environment, extras[name]):
                    continue
                wanted = extras.setdefault(canonicalize_name(req.name), set())
                if not set(req.extras) <= wanted:
                    wanted.update(req.extras)
                    changed = True
    return extras


def _applies(req: Requirement, environment: Mapping[str, str], extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(
        req.marker.evaluate({**environment, "extra": extra}) for extra in sorted(extras) or [""]
    )


def from_pip_report(
    document: Any,
    filename: str,
    *,
    target: Target,
    created: str,
    destination: str = "wheels",
    index_url: str | None = None,
) -> Plan:
    """Build a plan from a pip installation report (version "1").

    The target's marker values are replaced by the report's ``environment`` when it has one.
    pip does not say which index served a file: ``index_url`` is recorded as every artifact's
    index, and without it each artifact's index is the origin of its URL (a ``fetchplan`` key
    written by :func:`to_pip_report` overrides both). Sizes are unknown unless that key gives them.
    Dependencies are the ``requires_dist`` entries whose markers hold in the environment.
    """
    reader = _Reader(filename)
    if not isinstance(document, dict):
        raise FileFormatError(filename, [FieldProblem("", "not a JSON object")])
    version = reader.need(document, "version", str, "")
    reader.fail()
    if version != REPORT_VERSION:
        raise FileFormatError(
            filename, [FieldProblem("version", f"unsupported report version {version!r}")]
        )
    install = reader.need(document, "install", list, "") or []
    environment = reader.get(document, "environment", dict, "") or {}
    reader.fail()
    markers = {str(k): str(v) for k, v in environment.items()} or dict(target.markers)
    target = Target(name=target.name, markers=markers, tags=target.tags)

    parsed: list[tuple[str, list[Requirement], set[str]]] = []
    raw: list[tuple[str, dict[str, Any]]] = []
    for i, item in enumerate(install):
        path = f"install[{i}]"
        if not isinstance(item, dict):
            reader.problems.append(FieldProblem(path, "not an object"))
            continue
        info = reader.need(item, "download_info", dict, path)
        if info is not None:
            reader.need(info, "url", str, f"{path}.download_info")
        metadata = reader.need(item, "metadata", dict, path)
        if metadata is None:
            continue
        name = reader.need(metadata, "name", str, f"{path}.metadata")
        reader.need(metadata, "version", str, f"{path}.metadata")
        requirements: list[Requirement] = []
        declared = reader.get(metadata, "requires_dist", list, f"{path}.metadata") or []
        for j, text in enumerate(declared):
            try:
                requirements.append(Requirement(str(text)))
            except InvalidRequirement as exc:
                reader.problems.append(
                    FieldProblem(f"{path}.metadata.requires_dist[{j}]", str(exc).splitlines()[0])
                )
        requested = set(reader.get(item, "requested_extras", list, path) or [])
        if name is not None:
            parsed.append((canonicalize_name(name), requirements, requested))
            raw.append((path, item))
    reader.fail()
    extras = _active_extras(parsed, markers)

    artifacts: list[Artifact] = []
    for (path, item), (name, requirements, _) in zip(raw, parsed, strict=True):
        artifact = _artifact(
            reader,
            path,
            item,
            name=name,
            requirements=requirements,
            extras=extras[name],
            environment=markers,
            index_url=index_url,
        )
        if artifact is not None:
            artifacts.append(artifact)
    reader.fail()
    return assemble_plan(artifacts, target, created=created, destination=destination)


def _artifact(
    reader: _Reader,
    path: str,
    item: dict[str, Any],
    *,
    name: str,
    requirements: list[Requirement],
    extras: set[str],
    environment: Mapping[str, str],
    index_url: str | None,
) -> Artifact | None:
    metadata = item["metadata"]
    # Presence and types were checked (and reported) when the items were first read.
    version = metadata.get("version")
    info = item.get("download_info")
    raw_url = info.get("url") if isinstance(info, dict) else None
    archive_info = info.get("archive_info") if isinstance(info, dict) else None
    if not isinstance(raw_url, str) or not isinstance(version, str):
        return None
    if not isinstance(archive_info, dict):
        reader.problems.append(
            FieldProblem(
                f"{path}.download_info",
                "not an archive (plan VCS checkouts and local directories from requirements; "
                "a report cannot say what their source tree is)",
            )
        )
        return None
    url, _ = split_credentials(raw_url)
    found = item.get("fetchplan")
    ext: dict[str, Any] = found if isinstance(found, dict) else {}
    filename = ext.get("filename") or filename_of(url)
    kind = kind_of(filename)
    if kind is None:
        reader.problems.append(
            FieldProblem(f"{path}.download_info.url", f"not a wheel or sdist: {filename}")
        )
        return None
    hashes = _hashes(archive_info)
    requires_python = metadata.get("requires_python")
    direct = bool(item.get("is_direct", False))
    # A direct reference has no index: its "index" is its own URL, as the planner records it.
    index = ext.get("index") or (url if direct else index_url or origin_url(url))
    dependencies = tuple(
        Dependency(name=canonicalize_name(req.name), requirement=str(req))
        for req in requirements
        if _applies(req, environment, extras)
    )
    return Artifact(
        name=canonicalize_name(name),
        version=version,
        kind=kind,
        filename=filename,
        url=url,
        index=index,
        hashes=hashes,
        hash_source=ext.get("hash_source", "index") if hashes else None,
        size=ext.get("size"),
        requires_python=requires_python if isinstance(requires_python, str) else None,
        yanked=bool(item.get("is_yanked", False)),
        yanked_reason=ext.get("yanked_reason"),
        upload_time=ext.get("upload_time"),
        provenance=ext.get("provenance"),
        dependencies=dependencies,
        requested=bool(item.get("requested", False)),
        extras=tuple(ext.get("extras", sorted(extras))),
        destination=ext.get("destination") or filename,
        # What the export made up for a plan without metadata must not come back as recorded.
        metadata=None if ext.get("metadata_recorded") is False else _kept_metadata(metadata),
        direct=direct,
        path=ext.get("path") if isinstance(ext.get("path"), str) else None,
    )
