"""The JSON Schemas of fetchplan's files and the two-layer validation every reader uses.

Layer one (here) checks structure against the JSON Schema and reports every problem with its
dotted field path; layer two (the typed ``from_dict`` of each model) turns the document into
frozen dataclasses. Readers call :func:`load_document`; writers call :func:`dump_document`,
which validates before anything is written, so every file we write conforms.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from fetchplan._fs import atomic_write_bytes
from fetchplan.errors import FieldProblem, FileFormatError

__all__ = [
    "SchemaName",
    "canonical_json",
    "dotted_path",
    "dump_document",
    "dumps_document",
    "load_document",
    "parse_document",
    "plan_digest",
    "validate",
]

SchemaName = Literal[
    "plan", "manifest", "checkpoint", "policy", "plan-timings", "fetch-timings", "bundle"
]


@cache
def _validator(name: SchemaName) -> Draft202012Validator:
    text = resources.files(__package__).joinpath(f"{name}.schema.json").read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def dotted_path(parts: Any) -> str:
    """Render a jsonschema error path as ``artifacts[3].hashes.sha256``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _problem(error: ValidationError) -> FieldProblem:
    path = list(error.absolute_path)
    message = error.message
    schema = error.schema
    if (
        error.validator == "additionalProperties"
        and isinstance(error.instance, dict)
        and isinstance(schema, dict)
    ):
        allowed = set(schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if len(extra) == 1:
            return FieldProblem(dotted_path([*path, extra[0]]), "unknown field")
    if error.validator == "required":
        missing = message.split("'")[1] if "'" in message else message
        return FieldProblem(dotted_path([*path, missing]), "missing required field")
    if len(message) > 200:
        message = message[:197] + "..."
    return FieldProblem(dotted_path(path), message)


def validate(document: Any, schema: SchemaName, filename: str) -> None:
    """Raise :class:`FileFormatError` listing every way ``document`` breaks ``schema``."""
    errors = sorted(
        _validator(schema).iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]
    )
    if errors:
        raise FileFormatError(filename, [_problem(e) for e in errors])


def parse_document(text: str, filename: str) -> Any:
    """Parse JSON, or YAML when ``filename`` ends in ``.yaml``/``.yml``."""
    try:
        if filename.endswith((".yaml", ".yml")):
            return yaml.safe_load(text)
        return json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FileFormatError(filename, [FieldProblem("", f"not valid: {first}")]) from exc


def load_document(path: Path, schema: SchemaName) -> Any:
    """Read, parse and schema-validate the file at ``path``."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(str(path), [FieldProblem("", f"cannot read: {exc}")]) from exc
    document = parse_document(text, str(path))
    validate(document, schema, str(path))
    return document


def canonical_json(document: Any) -> bytes:
    """The canonical bytes of a document: sorted keys, no insignificant white space, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def plan_digest(document: Any) -> str:
    """The sha256 that identifies a plan, the same whether it was stored as JSON or YAML."""
    return hashlib.sha256(canonical_json(document)).hexdigest()


def dumps_document(document: Any, schema: SchemaName, filename: str) -> bytes:
    """Validate ``document`` and render it as stable, human-readable JSON or YAML bytes."""
    validate(document, schema, filename)
    if filename.endswith((".yaml", ".yml")):
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode("utf-8")
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def dump_document(path: Path, document: Any, schema: SchemaName) -> None:
    """Validate ``document`` against ``schema`` and write it atomically to ``path``."""
    atomic_write_bytes(path, dumps_document(document, schema, str(path)))
