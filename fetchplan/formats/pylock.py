"""PEP 751 lock files (``pylock.toml``, lock-version 1.0).

Export writes one ``[[packages]]`` entry per project version, with every wheel and the sdist
the plan holds for it. A plan with several targets gets one ``environments`` entry per target
and, on each package that serves only some of them, a ``marker`` built from the marker
variables that tell the targets apart. Build dependencies are left out (an installer would
install them). What PEP 751 has no field for (requested, extras, the dependencies' full
requirements, yanked state, provenance, the targets) goes under ``[tool.fetchplan]`` tables,
which PEP 751 reserves for tools.

Import reads any valid lock file and keeps what PEP 751's selection algorithm picks for the
target: the packages whose markers hold there, and for each the best wheel for the target's
tags, else the sdist.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import tomli_w
from packaging.pylock import (
    PackageArchive,
    PackageSdist,
    PackageWheel,
    Pylock,
    PylockSelectError,
    PylockValidationError,
)
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import parse_tag
from packaging.utils import NormalizedName, canonicalize_name

from fetchplan import __version__
from fetchplan._parse import load_toml
from fetchplan.errors import FieldProblem, FileFormatError
from fetchplan.formats._common import (
    ExportError,
    assemble_plan,
    check_exportable,
    environment_marker,
    filename_of,
    installable,
    kind_of,
    origin_url,
    targets_marker,
    timestamp_from_iso,
    timestamp_to_iso,
)
from fetchplan.schemas.plan import Artifact, Dependency, Plan, Target, inner_path_problem

__all__ = ["LOCK_VERSION", "dumps_pylock", "embedded_targets", "from_pylock", "to_pylock"]

LOCK_VERSION = "1.0"


def _file_entry(artifact: Artifact) -> dict[str, Any]:
    if not artifact.hashes:
        raise ExportError(
            f"{artifact.filename}: has no hash, and PEP 751 requires one for every file"
        )
    entry: dict[str, Any] = {"name": artifact.filename}
    if artifact.upload_time is not None:
        entry["upload-time"] = timestamp_from_iso(artifact.upload_time)
    entry["url"] = artifact.url
    if artifact.size is not None:
        entry["size"] = artifact.size
    entry["hashes"] = dict(sorted(artifact.hashes.items()))
    return entry


def _direct_entry(artifact: Artifact, members: Sequence[Artifact]) -> dict[str, Any]:
    """PEP 751's ``vcs``, ``directory`` or ``archive`` table of a direct artifact."""
    if len(members) > 1:
        raise ExportError(
            f"{members[1].filename}: {artifact.name} {artifact.version} is a direct reference "
            "with several files; PEP 751 allows one"
        )
    if artifact.vcs is not None:
        vcs: dict[str, Any] = {"type": artifact.vcs.type, "url": artifact.vcs.url}
        if artifact.vcs.requested_revision is not None:
            vcs["requested-revision"] = artifact.vcs.requested_revision
        vcs["commit-id"] = artifact.vcs.commit_id
        if artifact.vcs.subdirectory is not None:
            vcs["subdirectory"] = artifact.vcs.subdirectory
        return {"vcs": vcs}
    if artifact.kind == "directory":
        local = Path(url2pathname(urlsplit(artifact.url).path))
        directory: dict[str, Any] = {"path": local.as_posix()}
        if artifact.editable:
            directory["editable"] = True
        if artifact.subdirectory is not None:
            directory["subdirectory"] = artifact.subdirectory
        return {"directory": directory}
    if not artifact.hashes:
        raise ExportError(
            f"{artifact.filename}: has no hash, and PEP 751 requires one for every archive"
        )
    archive: dict[str, Any] = {"url": artifact.url}
    if artifact.size is not None:
        archive["size"] = artifact.size
    archive["hashes"] = dict(sorted(artifact.hashes.items()))
    if artifact.subdirectory is not None:
        archive["subdirectory"] = artifact.subdirectory
    return {"archive": archive}


def _attestation_identities(members: Sequence[Artifact]) -> list[dict[str, str]]:
    """PEP 751's ``attestation-identities``: the Trusted Publishers whose attestations of the
    package's files were verified (``plan --attestations``), each once, TOML having no null."""
    seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for member in members:
        for bundle in member.attestations or ():
            fields = {k: v for k, v in bundle.publisher.items() if v is not None}
            seen.setdefault(tuple(sorted(fields.items())), fields)
    return list(seen.values())


def _file_tool(artifact: Artifact) -> dict[str, Any]:
    info: dict[str, Any] = {"destination": artifact.destination, "yanked": artifact.yanked}
    if artifact.hash_source is not None:
        info["hash-source"] = artifact.hash_source
    for key, value in (
        ("yanked-reason", artifact.yanked_reason),
        ("provenance", artifact.provenance),
        ("upload-time", artifact.upload_time),
    ):
        if value is not None:
            info[key] = value
    if artifact.targets is not None:
        info["targets"] = list(artifact.targets)
    return info


def _check_one_version_per_target(plan: Plan, artifacts: Sequence[Artifact]) -> None:
    for target in plan.targets:
        seen: dict[str, str] = {}
        for artifact in artifacts:
            if artifact.targets is not None and target.name not in artifact.targets:
                continue
            other = seen.setdefault(artifact.name, artifact.version)
            if other != artifact.version:
                raise ExportError(
                    f"{artifact.filename}: target {target.name!r} would get both "
                    f"{artifact.name} {other} and {artifact.version}"
                )


def to_pylock(plan: Plan) -> dict[str, Any]:
    """The PEP 751 document for ``plan``, as the dict ``tomli_w`` writes.

    Raises :class:`ExportError` for an artifact without hashes, for a project version with two
    sdists, and for a target that would get two versions of one project.
    """
    artifacts = installable(plan)
    for artifact in artifacts:
        check_exportable(artifact)
    _check_one_version_per_target(plan, artifacts)
    groups: dict[tuple[str, str], list[Artifact]] = {}
    for artifact in artifacts:
        groups.setdefault((artifact.name, artifact.version), []).append(artifact)
    locked_names = {name for name, _ in groups}
    packages = [
        _package(plan, name, version, members, locked_names)
        for (name, version), members in groups.items()
    ]
    return _document(plan, packages)


def _package(
    plan: Plan, name: str, version: str, members: list[Artifact], locked_names: set[str]
) -> dict[str, Any]:
    """One ``[[packages]]`` entry: the files of ``name`` ``version`` the plan fetches."""
    package: dict[str, Any] = {"name": name, "version": version}
    package.update(_package_common(plan, members, locked_names))
    first = members[0]
    if first.direct:
        package.update(_direct_entry(first, members))
    else:
        package.update(_index_files(name, version, members))
    package["tool"] = {"fetchplan": _package_tool(members)}
    return package


def _package_common(plan: Plan, members: list[Artifact], locked_names: set[str]) -> dict[str, Any]:
    """The ``marker``, ``requires-python`` and ``dependencies`` keys, those that apply."""
    all_names = [t.name for t in plan.targets]
    served: set[str] = set()
    for member in members:
        served.update(all_names if member.targets is None else member.targets)
    common: dict[str, Any] = {}
    marker = targets_marker(plan.targets, served, members[0].filename)
    if marker is not None:
        common["marker"] = marker
    requires_python = {m.requires_python for m in members}
    if len(requires_python) == 1 and _valid_specifier(members[0].requires_python):
        # A legacy, unparsable Requires-Python is left out rather than made up.
        common["requires-python"] = members[0].requires_python
    dep_names = sorted({d.name for m in members for d in m.dependencies} & locked_names)
    if dep_names:
        common["dependencies"] = [{"name": dep} for dep in dep_names]
    return common


def _index_files(name: str, version: str, members: list[Artifact]) -> dict[str, Any]:
    """The ``index``, ``sdist``, ``wheels`` and ``attestation-identities`` of an index package."""
    entry: dict[str, Any] = {"index": members[0].index}
    sdists = [m for m in members if m.kind == "sdist"]
    if len(sdists) > 1:
        raise ExportError(
            f"{sdists[1].filename}: {name} {version} has two sdists "
            f"({sdists[0].filename}); PEP 751 allows one"
        )
    if sdists:
        entry["sdist"] = _file_entry(sdists[0])
    wheels = [_file_entry(m) for m in members if m.kind == "wheel"]
    if wheels:
        entry["wheels"] = wheels
    identities = _attestation_identities(members)
    if identities:
        entry["attestation-identities"] = identities
    return entry


def _package_tool(members: list[Artifact]) -> dict[str, Any]:
    """A package's ``[tool.fetchplan]``: what PEP 751 has no key for, to import it back."""
    return {
        "requested": any(m.requested for m in members),
        "extras": sorted({e for m in members for e in m.extras}),
        "dependencies": _dependencies(members),
        "files": {m.filename: _file_tool(m) for m in members},
    }


def _document(plan: Plan, packages: list[dict[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {"lock-version": LOCK_VERSION}
    environments = [m for t in plan.targets if (m := environment_marker(t)) is not None]
    if environments and len(environments) == len(plan.targets):
        document["environments"] = environments
    document["created-by"] = "fetchplan"
    document["packages"] = packages
    document["tool"] = {
        "fetchplan": {
            "version": __version__,
            "plan-created": plan.created,
            "destination": plan.destination,
            "targets": [t.to_dict() for t in plan.targets],
        }
    }
    return document


def _valid_specifier(text: str | None) -> bool:
    if text is None:
        return False
    try:
        SpecifierSet(text)
    except InvalidSpecifier:
        return False
    return True


def _dependencies(members: Sequence[Artifact]) -> list[dict[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for member in members:
        for dep in member.dependencies:
            seen.setdefault((dep.name, dep.requirement), None)
    return [{"name": name, "requirement": req} for name, req in seen]


def dumps_pylock(plan: Plan) -> str:
    """``plan`` as pylock.toml text, checked against packaging's PEP 751 validator."""
    text = tomli_w.dumps(to_pylock(plan))
    try:
        Pylock.from_dict(tomllib.loads(text))
    except PylockValidationError as exc:
        raise ExportError(f"the lock file fetchplan made is not valid PEP 751: {exc}") from exc
    return text


def _problem(exc: PylockValidationError) -> FieldProblem:
    return FieldProblem(exc.context or "", exc.message)


def embedded_targets(document: Mapping[str, Any]) -> tuple[Target, ...]:
    """The plan targets a fetchplan-written lock file records (none for other lock files)."""
    tool = document.get("tool")
    fetchplan = tool.get("fetchplan") if isinstance(tool, Mapping) else None
    raw = fetchplan.get("targets") if isinstance(fetchplan, Mapping) else None
    if not isinstance(raw, list):
        return ()
    try:
        return tuple(Target.from_dict(dict(t)) for t in raw)
    except (KeyError, TypeError, ValueError):
        return ()


def parse_pylock(text: str, filename: str) -> dict[str, Any]:
    """Parse TOML text; a syntax error becomes a one-line :class:`FileFormatError`."""
    return load_toml(text, filename)


def from_pylock(
    document: Mapping[str, Any],
    filename: str,
    *,
    target: Target,
    created: str,
    destination: str = "wheels",
    base_dir: Path | None = None,
) -> Plan:
    """Build a plan for ``target`` from a PEP 751 lock file (parsed TOML).

    Files given by ``path`` rather than ``url`` become ``file:`` URLs relative to ``base_dir``
    (the lock file's directory). Without ``[tool.fetchplan]`` data, a package is "requested"
    when no other selected package lists it among its dependencies.
    """
    try:
        lock = Pylock.from_dict(document)
    except PylockValidationError as exc:
        raise FileFormatError(filename, [_problem(exc)]) from exc
    tags = [tag for text in target.tags for tag in parse_tag(text)]
    try:
        selected = list(lock.select(environment=dict(target.markers), tags=tags))  # type: ignore[arg-type]
    except PylockSelectError as exc:
        raise FileFormatError(
            filename, [FieldProblem("packages", f"target {target.name!r}: {exc}")]
        ) from exc

    positions = {id(p): i for i, p in enumerate(lock.packages)}
    depended = {
        canonicalize_name(str(d["name"]))
        for package, _ in selected
        for d in package.dependencies or ()
        if isinstance(d, Mapping) and isinstance(d.get("name"), str)
    }
    artifacts: list[Artifact] = []
    problems: list[FieldProblem] = []
    for package, dist in selected:
        path = f"packages[{positions[id(package)]}]"
        artifact = _artifact(package, dist, path, problems, base_dir=base_dir, depended=depended)
        if artifact is not None:
            artifacts.append(artifact)
    if problems:
        raise FileFormatError(filename, problems)
    return assemble_plan(artifacts, target, created=created, destination=destination)


def _artifact(
    package: Any,
    dist: Any,
    path: str,
    problems: list[FieldProblem],
    *,
    base_dir: Path | None,
    depended: set[NormalizedName],
) -> Artifact | None:
    if not isinstance(dist, PackageWheel | PackageSdist | PackageArchive):
        problems.append(
            FieldProblem(
                path,
                "a VCS checkout or local directory cannot be imported (a lock file does not "
                "say what its source tree is): plan it from requirements",
            )
        )
        return None
    url = _dist_url(dist, path, problems, base_dir=base_dir)
    if url is None:
        return None
    filename = filename_of(url) if isinstance(dist, PackageArchive) else dist.filename
    kind = kind_of(filename)
    if kind is None:
        problems.append(FieldProblem(path, f"not a wheel or sdist: {filename}"))
        return None
    ours = _our_tool(package)
    info = _file_info(ours, filename)
    dependencies = _imported_dependencies(package, ours)
    version = str(package.version) if package.version is not None else None
    if version is None:
        problems.append(FieldProblem(path, "no version (fetchplan needs one per package)"))
        return None
    requested = ours.get("requested") if ours is not None else None
    return Artifact(
        name=package.name,
        version=version,
        kind=kind,
        filename=filename,
        url=url,
        index=package.index or (url if isinstance(dist, PackageArchive) else origin_url(url)),
        hashes={str(k).lower(): str(v).lower() for k, v in dist.hashes.items()},
        hash_source=info.get("hash-source", "requirements"),
        size=dist.size,
        requires_python=None if package.requires_python is None else str(package.requires_python),
        yanked=bool(info.get("yanked", False)),
        yanked_reason=info.get("yanked-reason"),
        upload_time=_upload_time(dist, info),
        provenance=info.get("provenance"),
        dependencies=dependencies,
        requested=bool(requested) if requested is not None else package.name not in depended,
        extras=tuple((ours or {}).get("extras", ())),
        destination=info.get("destination", filename),
        direct=isinstance(dist, PackageArchive),
        subdirectory=_archive_subdirectory(dist, kind, path, problems),
    )


def _archive_subdirectory(
    dist: Any, kind: str, path: str, problems: list[FieldProblem]
) -> str | None:
    """An archive's ``subdirectory``, when it is one fetchplan can build from."""
    subdirectory = getattr(dist, "subdirectory", None) if isinstance(dist, PackageArchive) else None
    if subdirectory is None:
        return None
    why = inner_path_problem(subdirectory)
    if why is None and kind == "wheel":
        why = "a wheel has no subdirectory to build"
    if why is not None:
        problems.append(FieldProblem(f"{path}.subdirectory", why))
        return None
    return str(subdirectory)


def _dist_url(
    dist: Any, path: str, problems: list[FieldProblem], *, base_dir: Path | None
) -> str | None:
    """The file's URL; a ``path`` is made a ``file:`` URL against ``base_dir``."""
    url: str | None = dist.url
    if url is None and dist.path is not None:
        if base_dir is None:
            problems.append(FieldProblem(path, f"relative path {dist.path!r} and no base"))
            return None
        url = urljoin(base_dir.resolve().as_uri() + "/", dist.path)
    assert url is not None  # packaging requires url or path
    return url


def _our_tool(package: Any) -> Mapping[str, Any] | None:
    """The package's ``[tool.fetchplan]`` table, if fetchplan wrote the lock file."""
    tool = package.tool or {}
    return tool.get("fetchplan") if isinstance(tool.get("fetchplan"), Mapping) else None


def _file_info(ours: Mapping[str, Any] | None, filename: str) -> Mapping[str, Any]:
    """What ``[tool.fetchplan]`` records of one file (empty when it records nothing)."""
    return (ours or {}).get("files", {}).get(filename, {}) if ours is not None else {}


def _imported_dependencies(package: Any, ours: Mapping[str, Any] | None) -> tuple[Dependency, ...]:
    """Our recorded requirements when there are some, else PEP 751's bare dependency names."""
    if ours is not None and isinstance(ours.get("dependencies"), list):
        return tuple(
            Dependency(name=canonicalize_name(d["name"]), requirement=d["requirement"])
            for d in ours["dependencies"]
        )
    return tuple(
        Dependency(name=canonicalize_name(d["name"]), requirement=d["name"])
        for d in package.dependencies or ()
        if isinstance(d.get("name"), str)
    )


def _upload_time(dist: Any, info: Mapping[str, Any]) -> Any:
    upload_time = info.get("upload-time")
    if upload_time is None and dist.upload_time is not None:
        upload_time = timestamp_to_iso(dist.upload_time)
    return upload_time
