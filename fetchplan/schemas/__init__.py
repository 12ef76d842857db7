"""The JSON Schemas of fetchplan's files and the two-layer validation every reader uses.

Layer one (here) checks structure against the JSON Schema and reports every problem with its
dotted field path; layer two (the typed ``from_dict`` of each model) turns the document into
frozen dataclasses. Readers call :func:`load_document`; writers call :func:`dump_document`,
which validates before anything is written, so every file we write conforms.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fetchplan._fs import atomic_write_bytes
from fetchplan.errors import FieldProblem, FileFormatError

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

__all__ = [
    "SchemaName",
    "canonical_json",
    "dotted_path",
    "dump_document",
    "dumps_document",
    "load_document",
    "parse_document",
    "plan_digest",
    "prepare_validator",
    "validate",
]

SchemaName = Literal[
    "plan", "manifest", "checkpoint", "policy", "plan-timings", "fetch-timings", "bundle"
]


@cache
def _validator(name: SchemaName) -> Draft202012Validator:
    # jsonschema is imported here, not at start-up: it costs tens of milliseconds that a
    # command can spend on the network first (see prepare_validator). The shipped schemas are
    # held against the meta-schema by the tests rather than on every run.
    from jsonschema import Draft202012Validator, FormatChecker

    return Draft202012Validator(_schema(name), format_checker=FormatChecker())


def _schema(name: SchemaName) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _no_remote(uri: str) -> Any:
    raise ValueError(f"{uri}: the shipped schemas refer to nothing outside themselves")


@cache
def _fast_validator(name: SchemaName) -> Callable[[Any], Any]:
    """``name`` compiled to Python by fastjsonschema: the check every valid document takes.

    A plan of a hundred artifacts takes 0.01 s instead of jsonschema's 0.12 s. The schemas
    use only keywords draft-07 has, so they are compiled as draft-07; only local references
    are followed. jsonschema stays the judge of invalid documents (:func:`validate`), and
    ``tests/test_schema_agreement.py`` holds the two to the same verdicts.
    """
    import fastjsonschema

    schema = dict(_schema(name))
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    refuse = dict.fromkeys(("http", "https", "file", "ftp", "fetchplan"), _no_remote)
    return fastjsonschema.compile(schema, handlers=refuse)


def prepare_validator(name: SchemaName) -> None:
    """Compile the validator of ``name`` now, so that a later :func:`validate` does not wait.

    Safe to call from a background thread while the caller waits on the network.
    """
    _fast_validator(name)


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
    """Raise :class:`FileFormatError` listing every way ``document`` breaks ``schema``.

    A valid document passes the compiled validator alone; an invalid one is then examined
    by jsonschema, which names every problem with its path.
    """
    from fastjsonschema import JsonSchemaValueException

    try:
        _fast_validator(schema)(document)
    except JsonSchemaValueException as fast:
        errors = sorted(
            _validator(schema).iter_errors(document),
            key=lambda e: [str(p) for p in e.absolute_path],
        )
        if errors:
            raise FileFormatError(filename, [_problem(e) for e in errors]) from None
        # Only the compiled validator objects (a date-time format jsonschema leaves unchecked
        # without its optional checkers): its own message, with a dotted path.
        parts = [int(p) if p.isdigit() else p for p in fast.path[1:]]  # "data" comes first
        message = fast.message.removeprefix(f"{fast.name} ")
        raise FileFormatError(filename, [FieldProblem(dotted_path(parts), message)]) from None


def parse_document(text: str, filename: str) -> Any:
    """Parse JSON, or YAML when ``filename`` ends in ``.yaml``/``.yml``."""
    if filename.endswith((".yaml", ".yml")):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise _unparsable(filename, exc) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _unparsable(filename, exc) from exc


def _unparsable(filename: str, exc: Exception) -> FileFormatError:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return FileFormatError(filename, [FieldProblem("", f"not valid: {first}")])


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
        import yaml

        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode("utf-8")
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def dump_document(path: Path, document: Any, schema: SchemaName) -> None:
    """Validate ``document`` against ``schema`` and write it atomically to ``path``."""
    atomic_write_bytes(path, dumps_document(document, schema, str(path)))
