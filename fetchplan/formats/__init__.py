"""Plans in other tools' formats: pip's installation report, PEP 751 pylock.toml, and hashed
requirements files.

:func:`export_plan` renders a plan as text in one of them; :func:`import_plan` builds a plan
from such a text. Both are pure: the caller reads and writes the files, and passes the
:mod:`.lookup` that finds a plain requirements file's pins on indexes. Each format module
(:mod:`.pip_report`, :mod:`.pylock`, :mod:`.requirements`) documents what it keeps and what
the format has no room for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, get_args

from fetchplan._parse import load_json, load_toml
from fetchplan.errors import FieldProblem, FileFormatError, InputError
from fetchplan.formats import pip_report, pylock, requirements
from fetchplan.formats._common import ExportError, current_target, utc_now
from fetchplan.formats.requirements import FileLookup, Found, Pin
from fetchplan.schemas import parse_document, validate
from fetchplan.schemas.plan import Plan, Target, plan_problems

__all__ = [
    "FORMATS",
    "ExportError",
    "FileLookup",
    "Format",
    "Found",
    "Pin",
    "current_target",
    "detect_format",
    "export_plan",
    "import_plan",
]

Format = Literal["pip-report", "pylock", "requirements"]
FORMATS: tuple[Format, ...] = get_args(Format)


def export_plan(plan: Plan, fmt: Format, *, target: str | None = None) -> str:
    """``plan`` as the text of ``fmt``.

    ``target`` names the plan target a pip report describes (pip reports hold one
    environment); it may be None when the plan has one target, and the other formats cover
    every target. Raises :class:`ExportError` when the plan cannot be expressed.
    """
    if fmt == "pip-report":
        document = pip_report.to_pip_report(plan, target)
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt == "pylock":
        return pylock.dumps_pylock(plan)
    return requirements.to_requirements(plan)


def detect_format(filename: str, text: str) -> Format:
    """A file's format, judged by its content.

    A JSON object is a pip report and a non-empty TOML table a lock file (their readers then
    name any missing key such as ``version`` or ``lock-version``); text that reads as a
    requirements file without error is one. Otherwise a ``*.json`` or ``*.toml`` name
    decides, so that broken JSON or TOML is reported as such; anything else is taken for a
    requirements file (whose errors are then reported).
    """
    try:
        if isinstance(load_json(text, filename), dict):
            return "pip-report"
    except FileFormatError as exc:
        if "JSON" not in exc.problems[0].message:
            raise  # JSON, but beyond bounds: no other reader will make more of it
    try:
        if load_toml(text, filename):
            return "pylock"
    except FileFormatError as exc:
        if "TOML" not in exc.problems[0].message:
            raise
    try:
        requirements.parse_requirements(text, filename)
        return "requirements"
    except FileFormatError:
        pass
    lowered = filename.lower()
    if lowered.endswith(".json"):
        return "pip-report"
    if lowered.endswith(".toml"):
        return "pylock"
    return "requirements"


def _choose(
    embedded: tuple[Target, ...], name: str | None, fallback: Target, filename: str
) -> Target:
    if name is not None:
        for target in embedded:
            if target.name == name:
                return target
        if not embedded and name == fallback.name:
            return fallback
        have = ", ".join(t.name for t in embedded) or "none"
        raise InputError(f"{filename}: records no target {name!r} (targets: {have})")
    if len(embedded) == 1:
        return embedded[0]
    if len(embedded) > 1:
        names = ", ".join(t.name for t in embedded)
        raise InputError(f"{filename}: records several targets ({names}); choose one")
    return fallback


def import_plan(
    text: str,
    filename: str,
    *,
    fmt: Format | None = None,
    target: str | None = None,
    fallback: Target | None = None,
    created: str | None = None,
    destination: str = "wheels",
    index_url: str | None = None,
    lookup: FileLookup | None = None,
    base_dir: Path | None = None,
) -> Plan:
    """A single-target plan built from ``text``, the content of the file ``filename``.

    The target is the one the file records (files fetchplan wrote record theirs; ``target``
    picks among several), else ``fallback`` (default: the running interpreter). ``index_url``
    stands for the index of pip-report files, which do not name it; ``lookup`` finds the files
    of requirements pins that carry no fetchplan notes; ``base_dir`` resolves relative paths
    of a lock file. The result is checked against the plan schema. Raises
    :class:`FileFormatError` naming the file and field for bad input.
    """
    kind = fmt if fmt is not None else detect_format(filename, text)
    fallback = fallback if fallback is not None else current_target()
    when = created if created is not None else utc_now()
    if kind == "pip-report":
        document = parse_document(text, filename)
        chosen = _choose(pip_report.embedded_targets(document), target, fallback, filename)
        plan = pip_report.from_pip_report(
            document,
            filename,
            target=chosen,
            created=when,
            destination=destination,
            index_url=index_url,
        )
    elif kind == "pylock":
        lock = pylock.parse_pylock(text, filename)
        chosen = _choose(pylock.embedded_targets(lock), target, fallback, filename)
        plan = pylock.from_pylock(
            lock, filename, target=chosen, created=when, destination=destination, base_dir=base_dir
        )
    else:
        embedded = requirements.embedded_targets(text, filename, fallback.tags)
        chosen = _choose(embedded, target, fallback, filename)
        plan = requirements.from_requirements(
            text,
            filename,
            target=chosen,
            created=when,
            destination=destination,
            lookup=lookup,
            base_dir=base_dir,
        )
    document = plan.to_dict()
    try:
        validate(document, "plan", filename)
        found = plan_problems(document)
    except FileFormatError as exc:
        found = exc.problems
    if found:
        problems = [FieldProblem(p.path, f"{p.message} (in the plan made from it)") for p in found]
        raise FileFormatError(filename, problems)
    return plan
