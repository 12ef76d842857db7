"""Does a wheel's own METADATA say what the plan was resolved from?

A plan records the core metadata the planner resolved each file from (often the index's PEP 658
``.metadata`` file, read before the wheel itself). PEP 658 requires that file to be identical to
the wheel's ``METADATA``; an index that serves another one (a broken mirror, a hostile one)
would have the plan resolved without a dependency the wheel needs. As pip does, the fields a
resolver reads are compared once the wheel is in hand: ``Requires-Dist``, ``Requires-Python``
and ``Provides-Extra``, each in its normal form (names canonicalised, specifiers and markers as
:mod:`packaging` writes them), so only a difference in meaning counts.

Pure apart from :func:`wheel_metadata_bytes`, which reads one member of a local zip. Shared by
the executor and the installer, so it imports neither the planner nor anything of theirs.
"""

from __future__ import annotations

import email.parser
import email.policy
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

__all__ = ["MetadataDiffers", "check_wheel_metadata", "differences", "wheel_metadata_bytes"]

MAX_METADATA_BYTES = 16 * 1024 * 1024
"""A METADATA larger than this is refused (a real one is kilobytes; a bomb is not)."""


class MetadataDiffers(Exception):
    """The wheel cannot be read as one, or its METADATA differs; ``str()`` says how."""


def wheel_metadata_bytes(path: Path, filename: str) -> bytes:
    """The ``<name>-<version>.dist-info/METADATA`` member of the wheel at ``path``.

    ``filename`` is the wheel's name, which chooses the ``.dist-info`` directory when the
    archive has several. Raises :class:`MetadataDiffers` when there is no such member.
    """
    project = canonicalize_name(filename.split("-", 1)[0])
    try:
        with zipfile.ZipFile(path) as zf:
            members = [
                info
                for info in zf.infolist()
                if info.filename.count("/") == 1
                and info.filename.endswith(".dist-info/METADATA")
                and _dist_info_project(info.filename) == project
            ]
            if len(members) != 1:
                raise MetadataDiffers(
                    f"expected one {project} .dist-info/METADATA, found {len(members)}"
                )
            info = members[0]
            if info.file_size > MAX_METADATA_BYTES:
                raise MetadataDiffers(f"{info.filename} is larger than {MAX_METADATA_BYTES} bytes")
            with zf.open(info) as handle:
                data = handle.read(MAX_METADATA_BYTES + 1)
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise MetadataDiffers(f"cannot read it as a wheel: {exc}") from None
    if len(data) > MAX_METADATA_BYTES:
        raise MetadataDiffers(f"{info.filename} is larger than {MAX_METADATA_BYTES} bytes")
    return data


def _dist_info_project(member: str) -> str:
    directory = member.split("/", 1)[0].removesuffix(".dist-info")
    return canonicalize_name(directory.rpartition("-")[0])


def _header_fields(raw: bytes) -> dict[str, list[str]]:
    """The header fields of core metadata, lower-cased names to values, in file order."""
    text = raw.decode("utf-8", errors="replace")
    message = email.parser.HeaderParser(policy=email.policy.compat32).parsestr(text)
    fields: dict[str, list[str]] = {}
    for name, value in message.items():
        fields.setdefault(name.lower(), []).append(str(value))
    return fields


def _requirement_key(text: str) -> str:
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return f"(unparsable) {' '.join(text.split())}"
    requirement.name = canonicalize_name(requirement.name)
    requirement.extras = {canonicalize_name(e) for e in requirement.extras}
    return str(requirement)


def _requires_python_key(values: Iterable[str]) -> str:
    texts = [v.strip() for v in values if v.strip()]
    if not texts:
        return ""
    try:
        return str(SpecifierSet(texts[0]))
    except InvalidSpecifier:
        return f"(unparsable) {texts[0]}"


def _extras_key(values: Iterable[str]) -> frozenset[str]:
    return frozenset(canonicalize_name(v.strip()) for v in values if v.strip())


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def differences(recorded: Mapping[str, Any], raw: bytes) -> list[str]:
    """How ``raw`` (a wheel's METADATA) differs from ``recorded`` (a plan's metadata object).

    Empty when they agree on Requires-Dist, Requires-Python and Provides-Extra; else one short
    phrase per difference, the wheel's side first.
    """
    fields = _header_fields(raw)
    found: list[str] = []
    planned_deps = {_requirement_key(r) for r in _as_list(recorded.get("requires_dist"))}
    wheel_deps = {_requirement_key(r) for r in fields.get("requires-dist", [])}
    found.extend(f"requires {r!r}" for r in sorted(wheel_deps - planned_deps))
    found.extend(f"does not require {r!r}" for r in sorted(planned_deps - wheel_deps))
    planned_python = _requires_python_key(_as_list(recorded.get("requires_python")))
    wheel_python = _requires_python_key(fields.get("requires-python", []))
    if planned_python != wheel_python:
        found.append(
            f"has Requires-Python {wheel_python or '(none)'!r}, not {planned_python or '(none)'!r}"
        )
    planned_extras = _extras_key(_as_list(recorded.get("provides_extra")))
    wheel_extras = _extras_key(fields.get("provides-extra", []))
    found.extend(f"provides extra {e!r}" for e in sorted(wheel_extras - planned_extras))
    found.extend(f"does not provide extra {e!r}" for e in sorted(planned_extras - wheel_extras))
    return found


def check_wheel_metadata(path: Path, filename: str, recorded: Mapping[str, Any]) -> None:
    """Raise :class:`MetadataDiffers` unless the wheel at ``path`` agrees with ``recorded``.

    The message is one line: what the wheel's METADATA says that the plan's metadata does not
    (at most three differences, then a count).
    """
    found = differences(recorded, wheel_metadata_bytes(path, filename))
    if not found:
        return
    shown = "; ".join(found[:3])
    more = f"; and {len(found) - 3} more" if len(found) > 3 else ""
    raise MetadataDiffers(
        f"its METADATA {shown}{more}, unlike the metadata the plan was resolved from "
        "(PEP 658 requires them to be identical); plan it again from a consistent index"
    )
