"""Reading a plan for execution: schema first, then what the schema cannot say.

:func:`check_plan` is pure: it looks at a parsed plan document (tolerating documents that
failed the schema, so both layers' problems are reported together) and returns every
:class:`FieldProblem` it finds. :func:`read_plan` does the I/O and raises all problems at once
as one :class:`FileFormatError`; nothing is fetched from a plan that fails.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fetchplan._urls import is_secure_or_trusted
from fetchplan.errors import FieldProblem, FileFormatError
from fetchplan.schemas import parse_document, validate
from fetchplan.schemas.plan import Plan, plan_problems, url_problem

__all__ = ["LoadedPlan", "check_destination_name", "check_plan", "read_plan"]

# Names the executor itself writes into the destination directory.
_OWN_NAMES = frozenset({".fetchplan", "manifest.json", "plan.json"})
# Windows device names, reserved with any extension ("nul.txt" too).
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
    | {"com¹", "com²", "com³", "lpt¹", "lpt²", "lpt³"}
)
_FORBIDDEN_CHARS = frozenset('/\\:*?"<>|\0')
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_WEAK = frozenset({"md5", "sha1"})


@dataclass(frozen=True, slots=True)
class LoadedPlan:
    """A plan that passed both layers: typed, with its raw document (for its digest)."""

    path: Path
    plan: Plan
    document: dict[str, Any]


def check_destination_name(name: str) -> str | None:
    """Why ``name`` is not one safe file name for the destination directory, or None.

    Safe means: one path component on every OS we care about, not ``.``/``..``, no
    separators, drive letters, NUL or control characters, no Windows device name, no trailing
    dot or space, and none of the names the executor writes itself.
    """
    if name in ("", ".", ".."):
        return f"{name!r} is not a file name"
    # Category C: control, format (such as U+202E, which shows a name reversed), unassigned.
    bad = sorted(
        {c for c in name if c in _FORBIDDEN_CHARS or unicodedata.category(c).startswith("C")}
    )
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return (
            f"{name!r} contains {shown} "
            "(path separators, drive letters and control characters are not allowed)"
        )
    if name != name.strip() or name.endswith("."):
        return f"{name!r} has a leading/trailing space or a trailing dot"
    stem = name.split(".", 1)[0].rstrip(" ").lower()
    if stem in _RESERVED:
        return f"{name!r} is a reserved device name on Windows"
    if name.lower() in _OWN_NAMES:
        return f"{name!r} is reserved for fetchplan's own files in the destination"
    return None


def _fold(name: str) -> str:
    # Case-insensitive and normalisation-insensitive, as on macOS and Windows file systems.
    return unicodedata.normalize("NFC", name).casefold()


def _check_url(
    url: Any, where: str, trusted_hosts: frozenset[str], problems: list[FieldProblem]
) -> None:
    if not isinstance(url, str):
        return
    why = url_problem(url)
    if why is not None:
        problems.append(FieldProblem(where, why))
        return
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            problems.append(FieldProblem(where, f"file URL on another host {parts.netloc!r}"))
        return
    if parts.scheme not in ("http", "https"):
        return  # the schema reports it
    if not parts.hostname:
        problems.append(FieldProblem(where, "URL has no host"))
        return
    if not is_secure_or_trusted(url, trusted_hosts):
        host = parts.hostname
        problems.append(
            FieldProblem(
                where,
                f"plain http to {host!r}, which is neither loopback nor a trusted host "
                f"(use https, or pass --trusted-host {host})",
            )
        )


def check_plan(
    document: Any,
    *,
    allow_unhashed: bool = False,
    trusted_hosts: Iterable[str] = (),
    destination_given: bool = False,
) -> list[FieldProblem]:
    """Every problem of meaning in a plan document, each with its dotted field path.

    An absolute plan ``destination`` is refused unless the user chose the destination
    (``destination_given``): a plan from elsewhere does not pick where files land. Each
    artifact's ``destination`` must be its ``filename``, so what a file is called on disk is
    what it is.

    Checks destinations (one safe component each, unique case-insensitively), filenames,
    sha256 presence and shape (md5 and sha1 never count; a missing sha256 is allowed only with
    ``allow_unhashed``), ``satisfied_by`` agreeing with the hash, and plain-http URLs (allowed
    only for loopback and ``trusted_hosts``, as pip does). Fields of the wrong type are left
    to the schema.
    """
    trusted = frozenset(h.lower() for h in trusted_hosts)
    problems: list[FieldProblem] = []
    if not isinstance(document, dict):
        return problems
    plan_destination = document.get("destination")
    if (
        isinstance(plan_destination, str)
        and not destination_given
        and (Path(plan_destination).is_absolute() or plan_destination.startswith("~"))
    ):
        problems.append(
            FieldProblem(
                "destination",
                f"{plan_destination!r} is absolute: give --dest to fetch this plan there",
            )
        )
    artifacts = document.get("artifacts")
    if not isinstance(artifacts, list):
        return problems
    seen: dict[str, int] = {}
    for i, artifact in enumerate(artifacts):
        at = f"artifacts[{i}]"
        if not isinstance(artifact, dict):
            continue
        destination = artifact.get("destination")
        if isinstance(destination, str):
            why = check_destination_name(destination)
            if why is not None:
                problems.append(FieldProblem(f"{at}.destination", why))
            key = _fold(destination)
            if key in seen:
                problems.append(
                    FieldProblem(
                        f"{at}.destination",
                        f"{destination!r} duplicates artifacts[{seen[key]}].destination "
                        "(names are compared case-insensitively)",
                    )
                )
            else:
                seen[key] = i
        filename = artifact.get("filename")
        if isinstance(filename, str):
            why = check_destination_name(filename)
            if why is not None:
                problems.append(FieldProblem(f"{at}.filename", why))
            elif (
                isinstance(destination, str)
                and check_destination_name(destination) is None
                and destination != filename
            ):
                problems.append(
                    FieldProblem(
                        f"{at}.destination", f"{destination!r} is not the filename {filename!r}"
                    )
                )
        hashes = artifact.get("hashes")
        sha256: Any = None
        if isinstance(hashes, dict):
            sha256 = hashes.get("sha256")
            if sha256 is None and not allow_unhashed:
                weak = sorted(_WEAK & set(hashes))
                hint = f" ({' and '.join(weak)} never count)" if weak else ""
                problems.append(
                    FieldProblem(
                        f"{at}.hashes.sha256",
                        f"missing: every artifact needs a sha256{hint}; "
                        "--allow-unhashed accepts artifacts without one",
                    )
                )
            elif isinstance(sha256, str) and _SHA256.match(sha256) is None:
                problems.append(
                    FieldProblem(f"{at}.hashes.sha256", "not a 64-digit lowercase hex sha256")
                )
        satisfied = artifact.get("satisfied_by")
        if (
            isinstance(satisfied, dict)
            and isinstance(sha256, str)
            and satisfied.get("sha256") not in (None, sha256)
        ):
            problems.append(FieldProblem(f"{at}.satisfied_by.sha256", "differs from hashes.sha256"))
        _check_url(artifact.get("url"), f"{at}.url", trusted, problems)
    return problems


def read_plan(
    path: Path,
    *,
    allow_unhashed: bool = False,
    trusted_hosts: Iterable[str] = (),
    destination_given: bool = False,
) -> LoadedPlan:
    """Read ``path`` and check it against the schema and :func:`check_plan`.

    Raises one :class:`FileFormatError` carrying every problem of both layers.
    """
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(str(path), [FieldProblem("", f"cannot read: {exc}")]) from exc
    document = parse_document(text, str(path))
    problems: list[FieldProblem] = []
    try:
        validate(document, "plan", str(path))
    except FileFormatError as exc:
        problems.extend(exc.problems)
    for problem in check_plan(
        document,
        allow_unhashed=allow_unhashed,
        trusted_hosts=trusted_hosts,
        destination_given=destination_given,
    ):
        if problem not in problems:
            problems.append(problem)
    if not problems:
        problems = plan_problems(document)
    if problems:
        raise FileFormatError(str(path), problems)
    return LoadedPlan(path=path, plan=Plan.from_dict(document), document=document)
