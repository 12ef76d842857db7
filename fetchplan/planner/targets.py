"""Plans for several targets: ``--target SPEC`` values.

A spec is ``key=value`` pairs separated by commas (``host`` alone means this interpreter)::

    py=3.12,platform=manylinux_2_28_aarch64,impl=cp,abi=cp312,name=arm

``py`` (or ``python``) is the Python version, ``platform`` a platform tag (repeatable:
``platform=A,platform=B``), ``impl`` (or ``implementation``) the interpreter abbreviation,
``abi`` an ABI tag (repeatable), ``name`` the target's name. What a spec leaves out comes from
this interpreter, exactly as the single-target options do (:func:`make_target`). The default
name is ``<impl><version>-<first platform>``, e.g. ``cp312-manylinux_2_28_aarch64``; names must
be unique within a plan. How the resolutions of several targets become one artifact list is
:func:`fetchplan.planner.build.merge_artifacts`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from fetchplan.errors import InputError
from fetchplan.planner.target import TargetEnv, make_target

__all__ = [
    "TargetSpec",
    "make_targets",
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
