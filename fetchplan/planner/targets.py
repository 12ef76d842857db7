"""Plans for several targets: ``--target SPEC`` values, and one artifact list from many resolutions.

A spec is ``key=value`` pairs separated by commas (``host`` alone means this interpreter)::

    py=3.12,platform=manylinux_2_28_aarch64,impl=cp,abi=cp312,name=arm

``py`` (or ``python``) is the Python version, ``platform`` a platform tag (repeatable:
``platform=A,platform=B``), ``impl`` (or ``implementation``) the interpreter abbreviation,
``abi`` an ABI tag (repeatable), ``name`` the target's name. What a spec leaves out comes from
this interpreter, exactly as the single-target options do (:func:`make_target`). The default
name is ``<impl><version>-<first platform>``, e.g. ``cp312-manylinux_2_28_aarch64``; names must
be unique within a plan.

:func:`merge_artifacts` is pure: it takes every resolution of a run (one per target, plus one
per target for the build requirements of its sdists) and gives each file one artifact, marked
with the targets it serves. A file installed in some target has ``build_dependency: false``,
``targets`` listing those targets, and ``build_targets`` listing the targets whose sdist builds
use it too; a file only sdist builds use has ``build_dependency: true`` and ``targets`` listing
the targets whose builds use it. In a single-target plan ``targets`` is left out, so such a plan
is the same, byte for byte, as before targets existed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from packaging.version import Version

from fetchplan.errors import InputError
from fetchplan.planner.build import ArtifactFacts, build_artifact
from fetchplan.planner.context import TargetResolution
from fetchplan.planner.target import TargetEnv, make_target
from fetchplan.schemas.plan import Artifact, Dependency

__all__ = [
    "Role",
    "TargetSpec",
    "make_targets",
    "merge_artifacts",
    "parse_target_spec",
]

_KEYS = {
    "py": "py",
    "python": "py",
    "platform": "platform",
    "impl": "impl",
    "implementation": "impl",
    "abi": "abi",
    "name": "name",
}
_REPEATABLE = frozenset({"platform", "abi"})
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One ``--target`` value, parsed; unset fields come from this interpreter."""

    python_version: str | None = None
    platforms: tuple[str, ...] = ()
    implementation: str | None = None
    abis: tuple[str, ...] = ()
    name: str | None = None


def parse_target_spec(text: str) -> TargetSpec:
    """Parse a ``--target`` value; raises :class:`InputError` quoting it and saying why."""
    spec = text.strip()
    if spec == "host":
        return TargetSpec()
    if not spec:
        raise InputError("--target '': empty; give KEY=VALUE pairs or 'host'")
    values: dict[str, list[str]] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise InputError(f"--target {text!r}: {part.strip()!r} is not KEY=VALUE")
        canonical = _KEYS.get(key)
        if canonical is None:
            raise InputError(
                f"--target {text!r}: unknown key {key!r} (use py, platform, impl, abi, name)"
            )
        if canonical in values and canonical not in _REPEATABLE:
            raise InputError(f"--target {text!r}: {key} given twice")
        values.setdefault(canonical, []).append(value)
    name = values.get("name", [None])[0]
    if name is not None and _NAME_RE.fullmatch(name) is None:
        raise InputError(f"--target {text!r}: name {name!r}: use letters, digits and . _ + - only")
    return TargetSpec(
        python_version=values.get("py", [None])[0],
        platforms=tuple(values.get("platform", ())),
        implementation=values.get("impl", [None])[0],
        abis=tuple(values.get("abi", ())),
        name=name,
    )


def make_targets(specs: Sequence[TargetSpec]) -> tuple[TargetEnv, ...]:
    """The target environments of ``specs``, in order; their names must differ."""
    targets: list[TargetEnv] = []
    for spec in specs:
        target = make_target(
            python_version=spec.python_version,
            platforms=spec.platforms,
            implementation=spec.implementation,
            abis=spec.abis,
        )
        if spec.name is not None:
            target = TargetEnv(name=spec.name, markers=target.markers, tags=target.tags)
        targets.append(target)
    seen: set[str] = set()
    for target in targets:
        if target.name in seen:
            raise InputError(
                f"--target: two targets are named {target.name!r}; tell them apart with name=NAME"
            )
        seen.add(target.name)
    return tuple(targets)


@dataclass(frozen=True, slots=True)
class Role:
    """A resolution's part in the plan: what a target installs, or what its sdist builds use."""

    resolved: TargetResolution
    build: bool = False


def _merge_one(
    group: Sequence[tuple[Role, Artifact]], order: Sequence[str], several: bool
) -> Artifact:
    first = group[0][1]
    for _role, other in group[1:]:
        if other.url != first.url or other.sha256 != first.sha256:
            raise InputError(
                f"{first.filename}: two different files of this name were chosen "
                f"({first.url} and {other.url}); plan the targets separately"
            )
    runtime = {r.resolved.target.name for r, _ in group if not r.build}
    builds = {r.resolved.target.name for r, _ in group if r.build}
    dependencies = sorted(
        {(d.name, d.requirement) for _, a in group for d in a.dependencies},
    )
    ordered_runtime = tuple(n for n in order if n in runtime)
    ordered_builds = tuple(n for n in order if n in builds)
    if runtime:
        targets = ordered_runtime if several else None
        build_targets = ordered_builds or None
    else:
        targets = ordered_builds if several else None
        build_targets = None
    return replace(
        first,
        dependencies=tuple(Dependency(name=n, requirement=r) for n, r in dependencies),
        requested=any(a.requested for _, a in group),
        extras=tuple(sorted({e for _, a in group for e in a.extras})),
        build_dependency=not runtime,
        targets=targets,
        build_targets=build_targets,
    )


def merge_artifacts(
    roles: Sequence[Role], facts: Mapping[str, ArtifactFacts], order: Sequence[str]
) -> tuple[Artifact, ...]:
    """One artifact per chosen file over every role, sorted by name, version and file name.

    ``facts`` is keyed by file name; ``order`` lists the plan's target names (a single name
    leaves ``targets`` out). Raises :class:`InputError` when two roles chose different files
    of the same name (their destinations would collide).
    """
    groups: dict[str, list[tuple[Role, Artifact]]] = {}
    for role in roles:
        resolution = role.resolved.resolution
        for name, candidate in resolution.pins.items():
            link = candidate.link
            if link is None:  # pragma: no cover - every pin but <python> has a file
                continue
            artifact = build_artifact(
                candidate,
                role.resolved.metadata[name],
                extras=resolution.extras.get(name, frozenset()),
                requested=not role.build and name in resolution.requested,
                facts=facts[link.filename],
                target=role.resolved.target,
                resolved=resolution.pins,
            )
            groups.setdefault(link.filename, []).append((role, artifact))
    several = len(order) > 1
    merged = [_merge_one(group, order, several) for group in groups.values()]
    merged.sort(key=lambda a: (a.name, Version(a.version), a.filename))
    return tuple(merged)
