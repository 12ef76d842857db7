"""The JSON Schemas of fetchplan's files and the two-layer validation every reader uses.

Layer one (here) checks structure against the JSON Schema and reports every problem with its
dotted field path; layer two (the typed ``from_dict`` of each model) turns the document into
frozen dataclasses. Readers call :func:`load_document`; writers call :func:`dump_document`,
which validates before anything is written, so every file we write conforms.

Layer one runs in two steps. A validator compiled to Python code by fastjsonschema decides,
some twenty times faster than jsonschema on a large plan, whether the document conforms; it
stops at the first problem. That code is generated ahead of time into ``_generated/`` (see
:mod:`._generate`), so no command spends the tens of milliseconds compiling it. Only when it
rejects the document does jsonschema run, to list every problem. Both read the same schema and
check patterns and ``date-time`` the same way (see :func:`is_date_time` and
:func:`search_pattern`); ``tests/test_schemas_agree.py`` holds them to the same verdicts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from functools import cache, partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from fetchplan._fs import atomic_write_bytes, write_output
from fetchplan._parse import dump_yaml, load_json, load_yaml
from fetchplan._urls import parses
from fetchplan.errors import FieldProblem, FileFormatError

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

__all__ = [
    "SchemaName",
    "canonical_json",
    "described",
    "dotted_path",
    "dump_document",
    "dumps_document",
    "field_descriptions",
    "is_date_time",
    "is_url",
    "load_document",
    "parse_document",
    "plan_digest",
    "prepare_validator",
    "schema_node",
    "search_pattern",
    "text_problems",
    "validate",
    "wrong_kind",
]

SchemaName = Literal[
    "plan",
    "manifest",
    "checkpoint",
    "policy",
    "plan-timings",
    "fetch-timings",
    "bundle",
    "install-journal",
    "store-entry",
]


# The JSON Schema draft fastjsonschema compiles for: every keyword our schemas use is draft-07's.
_FAST_DRAFT = "http://json-schema.org/draft-07/schema#"

# An unescaped ``$``. JSON Schema patterns are ECMA-262 regular expressions, whose ``$`` matches
# only at the very end; Python's also matches before a final newline, so that jsonschema took
# ``"<64 hex digits>\n"`` for a sha256. fastjsonschema writes ``$`` as ``\Z``, and so does
# search_pattern, which jsonschema's pattern keyword uses here.
_DOLLAR = re.compile(r"(?<!\\)\$")

# RFC 3339 section 5.6 date-time: full-date "T" full-time, with "T" and "Z" in either case.
_DATE_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-]([0-9]{2}):([0-9]{2}))"
)
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_date_time(value: object) -> bool:
    """Whether ``value`` meets the ``date-time`` format: an RFC 3339 time (non-strings do).

    The one definition both validators use. jsonschema's FormatChecker checks this format only
    when an optional package (rfc3339-validator) is installed, which fetchplan does not require;
    fastjsonschema's own pattern also takes an offset without its colon.
    """
    if not isinstance(value, str):
        return True
    found = _DATE_TIME.fullmatch(value)
    if found is None:
        return False
    year, month, day, hour, minute, second = (int(found.group(i)) for i in range(1, 7))
    if not 1 <= month <= 12 or not 1 <= day <= _DAYS_IN_MONTH[month - 1]:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if month == 2 and day == 29 and not leap:
        return False
    if hour > 23 or minute > 59 or second > 60:  # 60: a leap second
        return False
    offset_hour, offset_minute = found.group(7), found.group(8)
    return offset_hour is None or (int(offset_hour) <= 23 and int(offset_minute) <= 59)


def is_url(value: object) -> bool:
    """Whether ``value`` meets the ``url`` format: a URL whose host and port parse (strings
    only; the schemas' patterns say which schemes; see :func:`fetchplan._urls.parses`)."""
    return not isinstance(value, str) or parses(value)


def text_problems(document: Any) -> list[FieldProblem]:
    """What in a parsed document no writer can represent: a lone surrogate (a JSON or YAML
    ``\\udc80`` escape) in a string or key, and a key that is not a string (YAML reads an
    unquoted ``1:`` as a number). Walks without recursion, so any depth is safe."""
    problems: list[FieldProblem] = []
    stack: list[tuple[Any, list[Any]]] = [(document, [])]
    while stack and len(problems) < FileFormatError.MAX_LISTED + 1:
        value, path = stack.pop()
        if isinstance(value, str):
            if _has_surrogate(value):
                problems.append(FieldProblem(dotted_path(path), _SURROGATE))
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    problems.append(
                        FieldProblem(dotted_path([*path, str(key)]), "key is not a string")
                    )
                elif _has_surrogate(key):
                    problems.append(FieldProblem(dotted_path([*path, key]), _SURROGATE))
                else:
                    stack.append((item, [*path, key]))
        elif isinstance(value, list):
            stack.extend((item, [*path, i]) for i, item in enumerate(value))
    return problems


_SURROGATE = "contains a lone surrogate escape (\\ud800-\\udfff), which is not Unicode text"
# Where a lone surrogate can come from: a \u escape in the text (JSON, YAML double quotes).
_ESCAPE = re.compile(r"\\[uU]0{0,4}[dD][89a-fA-F]")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@cache
def _compiled_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(_DOLLAR.sub(r"\\Z", pattern))


def search_pattern(pattern: str, value: str) -> bool:
    """Whether ``value`` matches the schema ``pattern``, with ``$`` anchoring at the very end."""
    return _compiled_pattern(pattern).search(value) is not None


def _schema(name: SchemaName) -> Any:
    text = resources.files(__package__).joinpath(f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


@cache
def _read_only_schema(name: SchemaName) -> Any:
    """The schema of ``name``, parsed once, for reading its descriptions (never to mutate)."""
    return _schema(name)


def schema_node(name: SchemaName, pointer: str = "") -> Any:
    """The node of schema ``name`` at the JSON pointer ``pointer`` (without its ``#/``):
    ``""`` is the root, ``"$defs/artifact"`` the artifact, ``"properties/indexes/items"`` an
    index entry."""
    node = _read_only_schema(name)
    for part in pointer.split("/") if pointer else ():
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def field_descriptions(name: SchemaName, pointer: str = "") -> dict[str, str]:
    """Each property of the object at ``pointer`` in schema ``name`` and its description
    (``""`` where it has none; ``tests/test_schema_docs.py`` allows none)."""
    properties: dict[str, Any] = schema_node(name, pointer)["properties"]
    return {key: value.get("description", "") for key, value in properties.items()}


_Model = TypeVar("_Model", bound=type)


def described(name: SchemaName, pointer: str = "") -> Callable[[_Model], _Model]:
    """Class decorator of a model whose fields are the properties of schema ``name``'s object
    at ``pointer``: each field is described once, in the schema, and this lists those
    descriptions in the class's docstring, so ``help()`` and the schema say the same.

    The node is kept as ``__schema_node__``; ``tests/test_schema_docs.py`` holds every field
    of every model to a described property (and back).
    """

    def decorate(cls: _Model) -> _Model:
        cls.__schema_node__ = (name, pointer)  # type: ignore[attr-defined]
        if cls.__doc__ is None:  # python -OO: no docstrings to extend
            return cls
        descriptions = field_descriptions(name, pointer)
        where = f"``{name}.schema.json`` ``#/{pointer}``"
        lines = [f"Fields, as {where} describes them:", ""]
        lines.extend(
            f"- ``{f.name}``: {descriptions.get(f.name, '')}" for f in dataclasses.fields(cls)
        )
        cls.__doc__ = cls.__doc__.rstrip() + "\n\n" + "\n".join(lines) + "\n"
        return cls

    return decorate


@cache
def _validator(name: SchemaName) -> Draft202012Validator:
    """The jsonschema validator of ``name``, which lists every problem (the failure path)."""
    # jsonschema is imported only when a document fails the fast validator: it costs tens of
    # milliseconds. The shipped schemas are held against the meta-schema by the tests rather
    # than on every run.
    from jsonschema import Draft202012Validator, FormatChecker
    from jsonschema.exceptions import ValidationError
    from jsonschema.validators import extend

    def pattern(
        validator: Draft202012Validator, patrn: str, instance: Any, schema: Any
    ) -> Iterator[ValidationError]:
        if validator.is_type(instance, "string") and not search_pattern(patrn, instance):
            yield ValidationError(f"{instance!r} does not match {patrn!r}")

    checker = FormatChecker()
    checker.checks("date-time")(is_date_time)
    checker.checks("url")(is_url)
    validator_class = extend(  # type: ignore[no-untyped-call]
        Draft202012Validator, validators={"pattern": pattern}
    )
    return cast("Draft202012Validator", validator_class(_schema(name), format_checker=checker))


_fast_validators: dict[SchemaName, Callable[[Any], Any]] = {}
_fast_locks: dict[SchemaName, threading.Lock] = {}
_fast_locks_guard = threading.Lock()


def _fast_validator(name: SchemaName) -> Callable[[Any], Any]:
    """The fastjsonschema validator of ``name``, loaded or compiled once (the success path).

    Thread-safe: a caller that asks for a validator being loaded by another thread (see
    prepare_validator) waits for it rather than loading it a second time.
    """
    found = _fast_validators.get(name)
    if found is not None:
        return found
    with _fast_locks_guard:
        lock = _fast_locks.setdefault(name, threading.Lock())
    with lock:
        found = _fast_validators.get(name)
        if found is None:
            found = _generated_validator(name) or _compiled_validator(name)
            _fast_validators[name] = found
    return found


def fast_definition(name: SchemaName) -> Any:
    """The schema of ``name`` as fastjsonschema compiles it."""
    return {**_schema(name), "$schema": _FAST_DRAFT}


FAST_FORMATS: dict[str, Callable[[object], bool]] = {"date-time": is_date_time, "url": is_url}
"""The formats the fast validators check with functions of ours."""

FAST_USE_DEFAULT = False
"""fastjsonschema's ``use_default``: a validator fills in no defaults, it only judges."""


def fast_inputs_sha256(name: SchemaName) -> str:
    """The sha256 of what the fast validator of ``name`` is generated from: the schema as
    compiled (the draft included), the formats checked by our functions and the options. A
    generated validator is used only while this is the digest it records."""
    inputs = {
        "definition": fast_definition(name),
        "formats": sorted(FAST_FORMATS),
        "use_default": FAST_USE_DEFAULT,
    }
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def generated_module(name: SchemaName) -> str:
    """The module holding the validator generated ahead for ``name`` (see :mod:`._generate`)."""
    return f"{__package__}._generated.{name.replace('-', '_')}"


def _generated_validator(name: SchemaName) -> Callable[[Any], Any] | None:
    """The validator of ``name`` generated ahead of time, unless its schema changed since."""
    try:
        module = importlib.import_module(generated_module(name))
    except ImportError:
        return None
    if getattr(module, "INPUTS_SHA256", None) != fast_inputs_sha256(name):
        return None  # a schema edited without running the generator: compiled below
    validate: Callable[..., Any] = module.validate
    return partial(validate, custom_formats=FAST_FORMATS)


def _compiled_validator(name: SchemaName) -> Callable[[Any], Any]:
    # Imported here, not at start-up, like jsonschema.
    import fastjsonschema

    return fastjsonschema.compile(
        fast_definition(name), formats=FAST_FORMATS, use_default=FAST_USE_DEFAULT
    )


def prepare_validator(name: SchemaName) -> None:
    """Load the validator of ``name`` now, so that a later :func:`validate` does not wait.

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
    forbidden = _forbidden_field(error)
    if forbidden is not None:
        return FieldProblem(dotted_path([*path, forbidden[0]]), forbidden[1])
    if error.validator == "format" and error.validator_value == "url":
        message = f"{error.instance!r} is not a usable URL (its host or port does not parse)"
    if len(message) > 200:
        message = message[:197] + "..."
    return FieldProblem(dotted_path(path), message)


def _forbidden_field(error: ValidationError) -> tuple[str, str] | None:
    """The field and the reason for a ``{"not": {"required": [field]}}`` rule (a field
    another field's value rules out, as ``subdirectory`` for a wheel); None for any other."""
    if error.validator != "not" or not isinstance(error.validator_value, dict):
        return None
    required = error.validator_value.get("required")
    if list(error.validator_value) != ["required"] or not isinstance(required, list):
        return None
    if len(required) != 1 or not isinstance(error.instance, dict):
        return None
    kind = error.instance.get("kind")
    reason = f"not allowed for kind {kind!r}" if isinstance(kind, str) else "not allowed here"
    return str(required[0]), reason


# What each of fetchplan's files is called, and the commands that take it.
_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "fetchplan.plan": ("plan", ("fetch", "show", "export", "audit", "diff", "bundle")),
    "fetchplan.manifest": ("manifest", ("install", "verify")),
    "fetchplan.bundle": ("bundle description", ("install", "verify")),
    "fetchplan.plan-timings": ("plan --timings file", ("report",)),
    "fetchplan.fetch-timings": ("fetch --timings file", ("report",)),
}
_EXPECTED: dict[SchemaName, str] = {
    "plan": "fetchplan.plan",
    "manifest": "fetchplan.manifest",
    "bundle": "fetchplan.bundle",
    "plan-timings": "fetchplan.plan-timings",
    "fetch-timings": "fetchplan.fetch-timings",
}


def wrong_kind(
    document: Any, schema: SchemaName, accepted: tuple[SchemaName, ...] = ()
) -> FieldProblem | None:
    """The one problem to report when ``document`` is another kind of file than ``schema``
    (or one of ``accepted``): another fetchplan file (by its ``format``) or a pip
    installation report; None when it is not recognisably another kind."""
    if not isinstance(document, dict):
        return None
    expected = _KINDS.get(_EXPECTED.get(schema, ""), (schema, ()))[0]
    given = document.get("format")
    fine = {_EXPECTED.get(name) for name in (schema, *accepted)}
    if isinstance(given, str) and given in _KINDS and given not in fine:
        kind, commands = _KINDS[given]
        others = f" (or {', '.join(commands[1:])})" if len(commands) > 1 else ""
        return FieldProblem(
            "",
            f"this is a fetchplan {kind}, not a {expected}; "
            f"`fetchplan {commands[0]}`{others} takes it",
        )
    if schema == "plan" and "install" in document and "pip_version" in document:
        return FieldProblem(
            "",
            "this is a pip installation report, not a plan; `fetchplan import` makes a plan of it",
        )
    return None


def validate(document: Any, schema: SchemaName, filename: str) -> None:
    """Raise :class:`FileFormatError` listing every way ``document`` breaks ``schema``.

    Another kind of file altogether (a manifest where a plan belongs) is one problem, naming
    the commands that take it, rather than every field that differs.
    """
    fast = _fast_validator(schema)
    try:
        fast(document)
    except Exception as exc:  # noqa: BLE001 - any failure of it is settled by jsonschema below
        # Not only JsonSchemaException: the generated code can fail on what YAML's safe loader
        # makes beyond JSON (a !!set among uniqueItems raises TypeError), which jsonschema
        # reports as a problem of the file.
        rejected = exc
    else:
        return
    wrong = wrong_kind(document, schema)
    if wrong is not None:
        raise FileFormatError(filename, [wrong])
    errors = sorted(
        _validator(schema).iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]
    )
    if errors:
        raise FileFormatError(filename, [_problem(e) for e in errors])
    # The two validators disagree (the tests hold them to the same verdicts): the document is
    # refused all the same, with the fast validator's reason.
    raise FileFormatError(filename, [_fast_problem(rejected)])


def _fast_problem(exc: Exception) -> FieldProblem:
    from fastjsonschema import JsonSchemaValueException

    if not isinstance(exc, JsonSchemaValueException) or exc.name is None:
        return FieldProblem("", f"not valid: {type(exc).__name__}: {exc}")
    # Names read "data", "data.artifacts[0].size", as dotted_path writes them after "data".
    name = exc.name
    path = name.removeprefix("data").removeprefix(".")
    message = exc.message.removeprefix(name).strip() or exc.message
    return FieldProblem(path, message)


def parse_document(text: str, filename: str) -> Any:
    """Parse JSON, or YAML when ``filename`` ends in ``.yaml``/``.yml``, within the bounds of
    :mod:`fetchplan._parse` (depth, integer size, YAML alias expansion)."""
    if filename.endswith((".yaml", ".yml")):
        return _checked_text(load_yaml(text, filename), text, filename)
    try:
        document = load_json(text, filename)
    except FileFormatError as exc:
        raise _with_hint(exc, filename) from None
    return _checked_text(document, text, filename)


def _checked_text(document: Any, text: str, filename: str) -> Any:
    """``document``, unless it holds text no writer can represent (see :func:`text_problems`).

    Only an escape makes a lone surrogate, so the walk runs only when the text holds one.
    """
    if _ESCAPE.search(text):
        problems = text_problems(document)
        if problems:
            raise FileFormatError(filename, problems)
    return document


def _with_hint(error: FileFormatError, filename: str) -> FileFormatError:
    """``error`` (a file that is no JSON), saying which command takes a file of that name."""
    name = Path(filename).name.lower()
    hint = ""
    if name.endswith(".toml"):
        hint = "; a pylock.toml lock file? `fetchplan import` makes a plan of it"
    elif name.endswith((".txt", ".in")):
        hint = "; a requirements file? `fetchplan plan -r` or `fetchplan import` takes it"
    if not hint or len(error.problems) != 1:
        return error
    problem = error.problems[0]
    return FileFormatError(filename, [FieldProblem(problem.path, problem.message + hint)])


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
    try:
        if filename.endswith((".yaml", ".yml")):
            return dump_yaml(document).encode("utf-8")
        return _indented_json(document)
    except UnicodeEncodeError:
        problems = text_problems(document)
        if not problems:
            raise
        raise FileFormatError(filename, problems) from None


def _indented_json(document: Any) -> bytes:
    """``json.dumps(document, indent=2, ensure_ascii=False)`` and a newline, as UTF-8.

    json's indenting encoder is written in Python (40 ms for a plan of 38 artifacts); its
    compact one is in C, and msgspec re-indents that text in C, byte for byte as json
    indents it (same separators, empty containers as ``[]`` and ``{}``, strings as they
    were encoded). Text msgspec does not read back (``NaN``) is indented by json.
    """
    import msgspec

    compact = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    try:
        return msgspec.json.format(compact, indent=2) + b"\n"
    except msgspec.DecodeError:
        return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def dump_document(path: Path, document: Any, schema: SchemaName, *, output: bool = False) -> None:
    """Validate ``document`` against ``schema`` and write it atomically to ``path``; with
    ``output``, ``path`` is one the user named (see :func:`fetchplan._fs.write_output`)."""
    data = dumps_document(document, schema, str(path))
    (write_output if output else atomic_write_bytes)(path, data)
