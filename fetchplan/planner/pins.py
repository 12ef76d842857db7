"""Re-planning that keeps existing pins, as ``uv pip compile -o`` and pip-compile do.

The pins of an earlier plan (the ``-o`` file when it already holds a plan, or ``--from
FILE``: a fetchplan plan, a ``pylock.toml`` or a requirements file with ``==`` pins) are
*preferences*: the resolver tries a preferred version of a project before any other, so every
pin that still satisfies the inputs stays, and only what must move moves (a new requirement, a
tightened specifier, a conflict). ``--upgrade`` drops every preference, ``--upgrade-package
NAME`` those of NAME; ``--upgrade-package 'NAME<2'`` also constrains NAME to the specifier, as
uv's does. The preferences of a plan are those of the same target when it served one of that
name, else of all its targets; build dependencies keep no pins (uv's do not either).

The readers are pure over text (:func:`preferences_from_text`); :func:`load_preferences`
reads the file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from fetchplan._parse import load_toml
from fetchplan.errors import FetchplanError, FileFormatError, InputError
from fetchplan.planner import reqfile

__all__ = [
    "Preferences",
    "kept_pins",
    "load_preferences",
    "preferences_from_text",
    "upgrade_constraints",
    "upgrade_names",
]

log = logging.getLogger(__name__)

Pins = Mapping[NormalizedName, tuple[Version, ...]]


@dataclass(frozen=True, slots=True)
class Preferences:
    """Preferred versions by project: for all targets, and per target name (from a plan)."""

    everywhere: Pins = field(default_factory=dict)
    by_target: Mapping[str, Pins] = field(default_factory=dict)

    def for_target(self, name: str) -> Pins:
        """The pins to prefer when resolving for the target ``name``."""
        return self.by_target.get(name, self.everywhere)

    def without(self, names: Iterable[str]) -> Preferences:
        """These preferences less those of ``names`` (``--upgrade-package``)."""
        dropped = {canonicalize_name(n) for n in names}

        def keep(pins: Pins) -> Pins:
            return {n: v for n, v in pins.items() if n not in dropped}

        return Preferences(keep(self.everywhere), {t: keep(p) for t, p in self.by_target.items()})


def _add(pins: dict[NormalizedName, list[Version]], name: str, version: Version) -> None:
    found = pins.setdefault(canonicalize_name(name), [])
    if version not in found:
        found.append(version)


def _frozen(
    pins: Mapping[NormalizedName, list[Version]],
) -> dict[NormalizedName, tuple[Version, ...]]:
    return {name: tuple(sorted(versions, reverse=True)) for name, versions in pins.items()}


def _from_plan(document: Mapping[str, Any]) -> Preferences:
    everywhere: dict[NormalizedName, list[Version]] = {}
    by_target: dict[str, dict[NormalizedName, list[Version]]] = {
        t["name"]: {} for t in document["targets"]
    }
    for artifact in document["artifacts"]:
        if artifact.get("build_dependency"):
            continue
        version = Version(artifact["version"])
        _add(everywhere, artifact["name"], version)
        served = artifact.get("targets") or list(by_target)
        for target in served:
            _add(by_target.setdefault(target, {}), artifact["name"], version)
    return Preferences(_frozen(everywhere), {t: _frozen(p) for t, p in by_target.items()})


def _from_pylock(document: Mapping[str, Any], filename: str) -> Preferences:
    pins: dict[NormalizedName, list[Version]] = {}
    packages = document.get("packages", [])
    if not isinstance(packages, list):
        raise InputError(f"{filename}: packages must be an array of tables")
    for index, package in enumerate(packages):
        if not isinstance(package, dict) or not isinstance(package.get("name"), str):
            raise InputError(f"{filename}: packages[{index}].name is missing")
        version = package.get("version")
        if version is None:
            continue  # a directory or VCS package without a version pins nothing
        try:
            _add(pins, package["name"], Version(str(version)))
        except InvalidVersion:
            raise InputError(
                f"{filename}: packages[{index}].version {version!r} is invalid"
            ) from None
    return Preferences(_frozen(pins))


def _from_requirements(requirements: Iterable[reqfile.ParsedRequirement]) -> Preferences:
    pins: dict[NormalizedName, list[Version]] = {}
    for parsed in requirements:
        for spec in parsed.requirement.specifier:
            if spec.operator in ("==", "===") and not spec.version.endswith(".*"):
                try:
                    _add(pins, parsed.requirement.name, Version(spec.version))
                except InvalidVersion:
                    continue
    return Preferences(_frozen(pins))


def _looks_like_plan(text: str, filename: str) -> bool:
    return text.lstrip().startswith("{") or filename.lower().endswith((".json", ".yaml", ".yml"))


def preferences_from_text(text: str, filename: str, base_dir: Path) -> Preferences:
    """The pins of a file's ``text``: a fetchplan plan (JSON or YAML, validated), a PEP 751
    lock file (``*.toml``), else a requirements file (its ``==`` pins; nested files read from
    ``base_dir``). Raises :class:`FetchplanError` subclasses naming ``filename``."""
    if _looks_like_plan(text, filename):
        from fetchplan.schemas import parse_document, validate
        from fetchplan.schemas.plan import plan_problems

        document = parse_document(text, filename)
        if not isinstance(document, dict) or document.get("format") != "fetchplan.plan":
            raise InputError(f"{filename}: not a fetchplan plan (format: fetchplan.plan)")
        validate(document, "plan", filename)
        problems = plan_problems(document)
        if problems:
            raise FileFormatError(filename, problems)
        return _from_plan(document)
    if filename.lower().endswith(".toml"):
        return _from_pylock(load_toml(text, filename), filename)
    parsed = reqfile.parse_requirements_text(text, filename, base_dir)
    return _from_requirements((*parsed.requirements, *parsed.constraints))


def load_preferences(path: Path, *, implicit: bool = False) -> Preferences:
    """The pins of the file at ``path`` (see :func:`preferences_from_text`).

    ``implicit`` is for the plan file being overwritten (``-o``): a file that is missing or
    is not a valid plan gives no preferences (a warning says why) instead of an error.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        if implicit:
            return Preferences()
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise InputError(f"{path}: --from: cannot read: {reason}") from None
    base_dir = path.absolute().parent
    if not implicit:
        return preferences_from_text(text, str(path), base_dir)
    if not _looks_like_plan(text, str(path)):
        return Preferences()
    try:
        return preferences_from_text(text, str(path), base_dir)
    except FetchplanError as exc:
        log.warning("%s: its pins are not kept (%s); planning afresh", path, exc)
        return Preferences()


def _upgrade_requirement(value: str) -> Requirement:
    try:
        requirement = Requirement(value)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "invalid"
        raise InputError(f"--upgrade-package {value!r}: {reason}") from None
    if requirement.url is not None or requirement.extras or requirement.marker is not None:
        raise InputError(
            f"--upgrade-package {value!r}: give a project name, optionally with a version "
            "specifier (NAME or NAME==VERSION)"
        )
    return requirement


def upgrade_names(values: Sequence[str]) -> tuple[str, ...]:
    """The projects of ``--upgrade-package`` values."""
    return tuple(canonicalize_name(_upgrade_requirement(v).name) for v in values)


def upgrade_constraints(values: Sequence[str]) -> tuple[reqfile.ParsedRequirement, ...]:
    """The constraints ``--upgrade-package NAME<SPEC>`` values state (uv's: the specifier
    limits where the project may move)."""
    found = []
    for value in values:
        requirement = _upgrade_requirement(value)
        if requirement.specifier:
            found.append(
                reqfile.ParsedRequirement(
                    requirement=requirement, source="--upgrade-package", constraint=True
                )
            )
    return tuple(found)


def kept_pins(
    *,
    output: Path,
    from_file: Path | None,
    upgrade: bool,
    upgrade_packages: Sequence[str],
) -> Preferences:
    """The pins a plan keeps: those of ``from_file`` when given, else of the plan at
    ``output`` it replaces (if any), less those ``upgrade`` and ``upgrade_packages`` move."""
    if upgrade:
        return Preferences()
    if from_file is not None:
        found = load_preferences(from_file)
    elif str(output) == "-":
        return Preferences()
    else:
        found = load_preferences(output, implicit=True)
    return found.without(upgrade_names(upgrade_packages))
