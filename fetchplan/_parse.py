"""Parsing JSON, YAML and TOML from files and servers we do not control, within bounds.

Every reader of a document goes through :func:`load_json`, :func:`load_yaml` or
:func:`load_toml`. Each parses, then walks the result once, without recursion, and refuses:

* nesting deeper than :data:`MAX_DEPTH` (deeper documents would exhaust the recursion of the
  parser, the schema validators or our own code; nothing we read nests a tenth as deep);
* integers of more than :data:`MAX_INT_BITS` bits (a size, a count or a timestamp needs 64;
  Python's own limit on the digits of an integer string ends in a ``ValueError`` too);
* more values than the text could hold without YAML aliases, several times over: an alias
  names a node once and repeats it wherever it is used, so 472 bytes of nested aliases stand
  for billions of values, which every later walk (validation, hashing, output) would visit;
* mapping keys that are not strings (YAML's ``1:`` or ``null:``), which JSON cannot hold.

Each refusal is a :class:`~fetchplan.errors.FileFormatError`: one line naming the file (or URL)
and what is wrong with it. No third-party package is needed beyond PyYAML for YAML.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

from fetchplan.errors import FieldProblem, FileFormatError

__all__ = [
    "MAX_DEPTH",
    "MAX_INT_BITS",
    "MAX_NUMBER_DIGITS",
    "check_tree",
    "dump_yaml",
    "load_json",
    "load_toml",
    "load_yaml",
    "long_number",
]

MAX_DEPTH = 64
MAX_INT_BITS = 128
# Values allowed per byte of text, and on top of that: a value takes at least one byte of
# JSON or TOML (a digit) and of YAML; the factor leaves room for aliases used as intended.
_VALUES_PER_BYTE = 4
_VALUES_EXTRA = 10_000
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"[^"\n]*"|'[^'\n]*')"""
_LONG_DOTTED_KEY = re.compile(rf"(?<![A-Za-z0-9_-])(?:{_KEY_PART}[ \t]*\.[ \t]*){{{MAX_DEPTH}}}")


MAX_NUMBER_DIGITS = 100
_LONG_NUMBER = re.compile(rf"[0-9]{{{MAX_NUMBER_DIGITS + 1}}}")


def long_number(text: str) -> bool:
    """Whether ``text`` holds a run of more than :data:`MAX_NUMBER_DIGITS` digits.

    A version or specifier of thousands of digits parses (packaging's patterns take any
    number of them) and then fails when compared, with a ``ValueError`` past Python's limit
    on an integer's digits, wherever that happens to be; readers of versions from
    elsewhere refuse such text first. No version number needs a hundred digits.
    """
    return _LONG_NUMBER.search(text) is not None


def _refused(where: str, message: str) -> FileFormatError:
    return FileFormatError(where, [FieldProblem("", message)])


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def check_tree(document: Any, where: str, *, text_size: int) -> Any:
    """``document`` if it is within the bounds of the module docstring, else
    :class:`FileFormatError`. ``text_size``: the length of the text it was parsed from."""
    budget = _VALUES_PER_BYTE * text_size + _VALUES_EXTRA
    # Only containers go on the stack; their scalars are counted and checked in place (a
    # store entry or a plan is mostly rows of scalars: a third of the time of a walk that
    # stacked every value).
    seen = 1
    stack: list[tuple[Any, int]] = []
    _check_value(document, 1, stack, where)
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _refused(where, f"nested deeper than {MAX_DEPTH} levels")
        seen += len(value)
        if seen > budget:
            raise _refused(
                where,
                f"expands to more than {budget} values (YAML aliases repeating nested ones?)",
            )
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise _refused(where, f"key {_shown(key)} is not a string")
            items = value.values()
        else:
            items = value
        below = depth + 1
        for item in items:
            if isinstance(item, dict | list | tuple):
                stack.append((item, below))
            elif isinstance(item, int) and item.bit_length() > MAX_INT_BITS:
                raise _refused(
                    where, f"an integer of {item.bit_length()} bits (at most {MAX_INT_BITS})"
                )
    return document


def _check_value(value: Any, depth: int, stack: list[tuple[Any, int]], where: str) -> None:
    if isinstance(value, dict | list | tuple):
        stack.append((value, depth))
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _refused(where, f"an integer of {value.bit_length()} bits (at most {MAX_INT_BITS})")


def _shown(key: object) -> str:
    if isinstance(key, int) and key.bit_length() > MAX_INT_BITS:
        return "(a huge integer)"
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


def _parse_failure(where: str, kind: str, exc: BaseException) -> FileFormatError:
    if isinstance(exc, RecursionError):
        return _refused(where, f"nested too deeply to read as {kind}")
    if isinstance(exc, MemoryError):
        return _refused(where, f"too large to read as {kind}")
    if "integer string conversion" in str(exc):  # Python's own limit on an integer's digits
        return _refused(where, f"an integer with too many digits (at most {MAX_INT_BITS} bits)")
    return _refused(where, f"not valid {kind}: {_first_line(exc)}")


def load_json(data: str | bytes, where: str) -> Any:
    """JSON ``data`` parsed and checked (:func:`check_tree`); ``where`` names it in errors."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError, MemoryError) as exc:
        raise _parse_failure(where, "JSON", exc) from None
    return check_tree(document, where, text_size=len(data))


def load_toml(text: str, where: str) -> dict[str, Any]:
    """TOML ``text`` parsed and checked (:func:`check_tree`)."""
    # tomllib takes time quadratic in the parts of a dotted key (100,000 parts: minutes), so
    # such a key is refused before it is parsed (as is a string value of that many parts).
    if _LONG_DOTTED_KEY.search(text):
        raise _refused(where, f"a dotted key of more than {MAX_DEPTH} parts")
    try:
        document = tomllib.loads(text)
    except (ValueError, RecursionError, MemoryError) as exc:
        # TOMLDecodeError is a ValueError; so is an integer past Python's digit limit.
        raise _parse_failure(where, "TOML", exc) from None
    check_tree(document, where, text_size=len(text))
    return document


def load_yaml(text: str, where: str) -> Any:
    """YAML ``text`` parsed with PyYAML's safe loader and checked (:func:`check_tree`)."""
    import yaml

    try:
        document = yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        # ValueError: an integer past Python's digit limit, a bad timestamp; TypeError: an
        # unhashable key (a list or mapping used as a key).
        raise _parse_failure(where, "YAML", exc) from None
    return check_tree(document, where, text_size=len(text))


_LOADER: Any = None


def _loader() -> Any:
    """PyYAML's safe loader, with integers refused before Python converts a huge one."""
    global _LOADER  # noqa: PLW0603 - built once, on first use (PyYAML imported lazily)
    if _LOADER is None:
        import yaml

        class Loader(yaml.SafeLoader):
            depth = 0

            def compose_node(self, parent: Any, index: Any) -> Any:
                # Stopped here, before PyYAML recurses a thousand levels deep (slowly).
                self.depth += 1
                try:
                    if self.depth > MAX_DEPTH:
                        raise yaml.composer.ComposerError(
                            None, None, f"nested deeper than {MAX_DEPTH} levels", None
                        )
                    return super().compose_node(parent, index)
                finally:
                    self.depth -= 1

            def construct_yaml_int(self, node: Any) -> Any:
                value = self.construct_scalar(node)
                if isinstance(value, str) and len(value) > 2 * MAX_INT_BITS:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"an integer of {len(value)} characters", node.start_mark
                    )
                return super().construct_yaml_int(node)

        Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)
        _LOADER = Loader
    return _LOADER


def dump_yaml(document: Any) -> str:
    """``document`` as YAML, with no anchors or aliases (a shared value is written out each
    time), as :func:`load_yaml` reads it back."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(document, Dumper=Dumper, sort_keys=False, allow_unicode=True)
