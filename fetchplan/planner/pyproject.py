"""Requirements read from a ``pyproject.toml``: its ``[project]`` table and PEP 735 groups.

``-r pyproject.toml`` (or ``pyproject.toml`` as a requirement argument) plans what uv plans
for it: ``[project].dependencies``, plus the ``[project.optional-dependencies]`` named by
``--extra`` (or all of them, ``--all-extras``). An extra naming the project itself
(``all = ["me[a,b]"]``) brings those extras' requirements, as uv and pip read it. Dependencies
that are ``dynamic`` are known only to the build backend: that is an error naming the file.

``--group [PATH:]NAME`` takes a dependency group of ``PATH`` (default ``./pyproject.toml``), as
``pip install --group`` does; ``{include-group = ...}`` entries are expanded and a cycle is an
error (:mod:`packaging.dependency_groups`, the reference implementation of PEP 735).

Parsing is pure (the ``*_text`` functions take the text); :func:`read_pyproject` reads a file.
Each requirement's ``source`` names the file and the TOML key, like ``pyproject.toml:
project.dependencies[2]``, where requirements files give a line number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.dependency_groups import DependencyGroupResolver
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidName, canonicalize_name

from fetchplan._parse import load_toml
from fetchplan.errors import InputError
from fetchplan.planner.reqfile import ParsedRequirement

__all__ = [
    "PYPROJECT",
    "GroupRequest",
    "group_requirements_text",
    "is_pyproject",
    "parse_group_request",
    "project_inputs",
    "project_requirements_text",
    "read_pyproject",
]

PYPROJECT = "pyproject.toml"


def is_pyproject(path: Path | str) -> bool:
    """True when ``path`` names a ``pyproject.toml`` (by its file name, as uv decides)."""
    return Path(path).name == PYPROJECT


def read_pyproject(path: Path) -> str:
    """The text of ``path``; :class:`InputError` naming it when it cannot be read."""
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _load(text: str, display: str) -> dict[str, Any]:
    # Bounded: no nesting, integer or dotted key past the readers' limits (one line each).
    return load_toml(text, display)


def _requirement(text: object, where: str) -> Requirement:
    if not isinstance(text, str):
        raise InputError(f"{where}: a requirement must be a string, not {type(text).__name__}")
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "invalid"
        raise InputError(f"{where}: malformed requirement {text!r}: {reason}") from None


def _string_list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise InputError(f"{where}: must be an array of requirement strings")
    return value


def project_requirements_text(
    text: str, display: str, *, extras: Sequence[str] = (), all_extras: bool = False
) -> tuple[ParsedRequirement, ...]:
    """The requirements of the ``[project]`` table of a ``pyproject.toml`` text.

    ``display`` names the file in sources and errors. Raises :class:`InputError` for a file
    without a ``[project]`` table, dynamic dependencies (or dynamic optional dependencies
    when extras are asked for), an extra the project does not define, or a malformed entry.
    """
    project = _load(text, display).get("project")
    if not isinstance(project, dict):
        raise InputError(f"{display}: no [project] table (its dependencies are what is planned)")
    dynamic = project.get("dynamic", [])
    if not isinstance(dynamic, list):
        raise InputError(f"{display}: project.dynamic must be an array of field names")
    if "dependencies" in dynamic:
        raise InputError(
            f"{display}: project.dependencies is dynamic (only the build backend knows it); "
            "fetchplan reads static dependencies only: list them in [project] or give the "
            "built requirements with -r FILE"
        )
    wanted = bool(extras) or all_extras
    if wanted and "optional-dependencies" in dynamic:
        raise InputError(
            f"{display}: project.optional-dependencies is dynamic; --extra and --all-extras "
            "need static ones"
        )
    name = project.get("name")
    own = _canonical(name) if isinstance(name, str) else None
    found: list[ParsedRequirement] = []
    where = "project.dependencies"
    for index, entry in enumerate(_string_list(project.get("dependencies", []), where)):
        found.append(_parsed(entry, f"{display}:{where}[{index}]"))
    if not wanted:
        return tuple(found)
    optional = _optional(project.get("optional-dependencies", {}), display)
    chosen = list(optional) if all_extras else [_extra(e, optional, display) for e in extras]
    found.extend(_expand_extras(chosen, optional, own, display))
    return tuple(found)


def _canonical(name: str) -> str:
    try:
        return canonicalize_name(name, validate=True)
    except InvalidName:
        return canonicalize_name(name)


def _optional(value: object, display: str) -> dict[str, tuple[str, list[object]]]:
    """Canonical extra -> (the key as written, its entries)."""
    where = "project.optional-dependencies"
    if not isinstance(value, dict):
        raise InputError(f"{display}: {where} must be a table of arrays")
    return {
        _canonical(key): (key, _string_list(entries, f"{display}:{where}.{key}"))
        for key, entries in value.items()
    }


def _extra(given: str, optional: Mapping[str, object], display: str) -> str:
    name = _canonical(given)
    if name not in optional:
        defined = ", ".join(sorted(optional)) or "none"
        raise InputError(f"{display}: --extra {given!r}: no such extra (defined: {defined})")
    return name


def _expand_extras(
    chosen: Iterable[str],
    optional: Mapping[str, tuple[str, list[object]]],
    own: str | None,
    display: str,
) -> list[ParsedRequirement]:
    """The requirements of ``chosen`` extras; a requirement on the project itself brings the
    extras it names instead (each extra once, so a self-referring cycle ends)."""
    pending = list(chosen)
    done: set[str] = set()
    found: list[ParsedRequirement] = []
    while pending:
        extra = pending.pop(0)
        if extra in done:
            continue
        done.add(extra)
        key, entries = optional[extra]
        for index, entry in enumerate(entries):
            parsed = _parsed(entry, f"{display}:project.optional-dependencies.{key}[{index}]")
            if own is not None and parsed.name == own:
                pending.extend(_extra(e, optional, display) for e in parsed.requirement.extras)
                continue
            found.append(parsed)
    return found


def _parsed(entry: object, where: str) -> ParsedRequirement:
    requirement = _requirement(entry, where)
    if requirement.url is not None:
        # name @ URL (PEP 508 allows no relative path here): a direct reference.
        from fetchplan.planner.directref import parse_direct

        found, ref = parse_direct(
            str(entry), where, Path.cwd(), reader=lambda p: p.read_text(encoding="utf-8")
        )
        return ParsedRequirement(requirement=found, source=where, direct=ref)
    return ParsedRequirement(requirement=requirement, source=where)


# -- dependency groups ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupRequest:
    """One ``--group`` value: the ``pyproject.toml`` it reads and the group's name."""

    path: Path
    name: str


def parse_group_request(value: str) -> GroupRequest:
    """``NAME`` or ``PATH:NAME`` (pip's form; the path may itself hold colons)."""
    path, sep, name = value.rpartition(":")
    if not sep:
        return GroupRequest(Path(PYPROJECT), value)
    if not path or not name:
        raise InputError(f"--group {value!r}: give NAME or PATH:NAME")
    if not is_pyproject(path):
        raise InputError(f"--group {value!r}: the path must name a {PYPROJECT}")
    return GroupRequest(Path(path), name)


def group_requirements_text(
    text: str, display: str, names: Sequence[str]
) -> tuple[ParsedRequirement, ...]:
    """The requirements of the dependency groups ``names`` of a ``pyproject.toml`` text,
    includes expanded. Raises :class:`InputError` naming ``display`` for a missing table or
    group, a cycle of includes or a malformed entry."""
    table = _load(text, display).get("dependency-groups")
    if not isinstance(table, dict):
        raise InputError(f"{display}: no [dependency-groups] table")
    try:
        resolver = DependencyGroupResolver(table)
        resolved = [(name, resolver.resolve(name)) for name in names]
    except ExceptionGroup as group:
        raise InputError(f"{display}: [dependency-groups]: {_first(group)}") from None
    except (ValueError, TypeError, LookupError) as exc:
        raise InputError(f"{display}: [dependency-groups]: {_reason(exc)}") from None
    return tuple(
        ParsedRequirement(requirement=req, source=f"{display}:dependency-groups.{name}")
        for name, requirements in resolved
        for req in requirements
    )


def _first(group: BaseExceptionGroup[Any]) -> str:
    first = group.exceptions[0]
    if isinstance(first, BaseExceptionGroup):
        return _first(first)
    return _reason(first)


def _reason(exc: BaseException) -> str:
    # LookupError's str() is its repr-quoted argument.
    text = exc.args[0] if isinstance(exc, LookupError) and exc.args else str(exc)
    return str(text).splitlines()[0]


# -- the command line's inputs ----------------------------------------------------------------


def project_inputs(
    requirement_files: Sequence[Path],
    arguments: Sequence[str],
    *,
    extras: Sequence[str] = (),
    all_extras: bool = False,
    groups: Sequence[str] = (),
) -> tuple[list[ParsedRequirement], list[str]]:
    """The requirements of the ``pyproject.toml`` files among ``requirement_files`` and
    ``arguments`` (an argument naming a ``pyproject.toml``), with their extras, and
    of the ``groups``; and the arguments that remain requirements.

    Raises :class:`InputError` for extras asked for without a ``pyproject.toml``.
    """
    files = [Path(p) for p in requirement_files if is_pyproject(p)]
    rest: list[str] = []
    for text in arguments:
        # No project is named pyproject.toml: such an argument is the file, present or not.
        if is_pyproject(text.strip()):
            files.append(Path(text.strip()))
        else:
            rest.append(text)
    if (extras or all_extras) and not files:
        raise InputError(
            "--extra and --all-extras need a pyproject.toml (-r pyproject.toml) to read extras from"
        )
    found: list[ParsedRequirement] = []
    for path in files:
        found.extend(
            project_requirements_text(
                read_pyproject(path), str(path), extras=extras, all_extras=all_extras
            )
        )
    by_path: dict[Path, list[str]] = {}
    for value in groups:
        request = parse_group_request(value)
        by_path.setdefault(request.path, []).append(request.name)
    for path, names in by_path.items():
        found.extend(group_requirements_text(read_pyproject(path), str(path), names))
    return found, rest
