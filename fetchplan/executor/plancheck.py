"""Reading a plan for execution: schema first, then what the schema cannot say.

:func:`check_plan` is pure: it looks at a parsed plan document (tolerating documents that
failed the schema, so both layers' problems are reported together) and returns every
:class:`FieldProblem` it finds. :func:`read_plan` does the I/O and raises all problems at once
as one :class:`FileFormatError`; nothing is fetched from a plan that fails.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
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


def _url_problem(url: str, trusted_hosts: frozenset[str]) -> str | None:
    why = url_problem(url)
    if why is not None:
        return why
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            return f"file URL on another host {parts.netloc!r}"
        return None
    if parts.scheme not in ("http", "https"):
        return None  # the schema reports it
    if not parts.hostname:
        return "URL has no host"
    if not is_secure_or_trusted(url, trusted_hosts):
        host = parts.hostname
        return (
            f"plain http to {host!r}, which is neither loopback nor a trusted host "
            f"(use https, or pass --trusted-host {host})"
        )
    return None


@dataclass(slots=True)
class _Checking:
    """What the rules of one plan's artifacts know beyond the artifact at hand."""

    allow_unhashed: bool
    trusted_hosts: frozenset[str]
    seen: dict[str, int] = field(default_factory=dict)
    """Each destination so far, folded, and the first artifact that had it."""


_Rule = Callable[[dict[str, Any], str, int, _Checking], Iterator[FieldProblem]]
"""A rule over one artifact (its dict, its dotted path, its index): the problems it finds."""


def _destination_is_safe(
    artifact: dict[str, Any], at: str, i: int, checking: _Checking
) -> Iterator[FieldProblem]:
    destination = artifact.get("destination")
    if isinstance(destination, str):
        why = check_destination_name(destination)
        if why is not None:
            yield FieldProblem(f"{at}.destination", why)


def _destination_is_unique(
    artifact: dict[str, Any], at: str, i: int, checking: _Checking
) -> Iterator[FieldProblem]:
    destination = artifact.get("destination")
    if not isinstance(destination, str):
        return
    key = _fold(destination)
    if key in checking.seen:
        yield FieldProblem(
            f"{at}.destination",
            f"{destination!r} duplicates artifacts[{checking.seen[key]}].destination "
            "(names are compared case-insensitively)",
        )
    else:
        checking.seen[key] = i


def _filename_is_the_destination(
    artifact: dict[str, Any], at: str, i: int, checking: _Checking
) -> Iterator[FieldProblem]:
    filename = artifact.get("filename")
    if not isinstance(filename, str):
        return
    why = check_destination_name(filename)
    if why is not None:
        yield FieldProblem(f"{at}.filename", why)
        return
    destination = artifact.get("destination")
    if (
        isinstance(destination, str)
        and check_destination_name(destination) is None
        and destination != filename
    ):
        yield FieldProblem(f"{at}.destination", f"{destination!r} is not the filename {filename!r}")


def _sha256_of(artifact: dict[str, Any]) -> Any:
    hashes = artifact.get("hashes")
    return hashes.get("sha256") if isinstance(hashes, dict) else None


def _has_a_sha256(
    artifact: dict[str, Any], at: str, i: int, checking: _Checking
) -> Iterator[FieldProblem]:
    hashes = artifact.get("hashes")
    if not isinstance(hashes, dict):
        return
    sha256 = hashes.get("sha256")
    if sha256 is None and not checking.allow_unhashed:
        weak = sorted(_WEAK & set(hashes))
        hint = f" ({' and '.join(weak)} never count)" if weak else ""
        yield FieldProblem(
            f"{at}.hashes.sha256",
            f"missing: every artifact needs a sha256{hint}; "
            "--allow-unhashed accepts artifacts without one",
        )
    elif isinstance(sha256, str) and _SHA256.match(sha256) is None:
        yield FieldProblem(f"{at}.hashes.sha256", "not a 64-digit lowercase hex sha256")


def _satisfied_by_agrees(
    artifact: dict[str, Any], at: str, i: int, checking: _Checking
) -> Iterator[FieldProblem]:
    satisfied = artifact.get("satisfied_by")
    sha256 = _sha256_of(artifact)
    if (
        isinstance(satisfied, dict)
        and isinstance(sha256, str)
        and satisfied.get("sha256") not in (None, sha256)
    ):
        yield FieldProblem(f"{at}.satisfied_by.sha256", "differs from hashes.sha256")


def _url_is_allowed(
    artifact: dict[str, Any], at: str, i: int, checking: _Checking
) -> Iterator[FieldProblem]:
    url = artifact.get("url")
    if isinstance(url, str):
        why = _url_problem(url, checking.trusted_hosts)
        if why is not None:
            yield FieldProblem(f"{at}.url", why)


_ARTIFACT_RULES: tuple[_Rule, ...] = (
    _destination_is_safe,
    _destination_is_unique,
    _filename_is_the_destination,
    _has_a_sha256,
    _satisfied_by_agrees,
    _url_is_allowed,
)
"""The rules every artifact of a plan is checked by, in the order their problems are listed."""


def _destination_is_relative(
    document: dict[str, Any], destination_given: bool
) -> Iterator[FieldProblem]:
    plan_destination = document.get("destination")
    if (
        isinstance(plan_destination, str)
        and not destination_given
        and (Path(plan_destination).is_absolute() or plan_destination.startswith("~"))
    ):
        yield FieldProblem(
            "destination",
            f"{plan_destination!r} is absolute: give --dest to fetch this plan there",
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
    if not isinstance(document, dict):
        return []
    problems = list(_destination_is_relative(document, destination_given))
    artifacts = document.get("artifacts")
    if not isinstance(artifacts, list):
        return problems
    checking = _Checking(allow_unhashed, frozenset(h.lower() for h in trusted_hosts))
    for i, artifact in enumerate(artifacts):
        if isinstance(artifact, dict):
            for rule in _ARTIFACT_RULES:
                problems.extend(rule(artifact, f"artifacts[{i}]", i, checking))
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
