"""Requirements and constraints files, read by pip's conventions.

A line is joined with the next when it ends in ``\\``; ``#`` at the start of a line or after
whitespace starts a comment (so a URL fragment such as ``#sha256=`` survives); ``${VAR}``
(upper-case letters, digits and ``_``) is replaced by the environment variable when it is set
and non-empty, as pip does. A line is either a requirement followed by per-requirement options
(``--hash``) or a line of global options (index URLs, find-links, nested files, binary policy).

Parsing is pure: :func:`parse_requirements_text` takes the text and a ``reader`` for nested
files; :func:`parse_requirements_file` is the thin I/O wrapper. Index URLs are returned as
written, credentials included; callers strip them (:func:`fetchplan._urls.split_credentials`)
before anything is written. Error messages pass through :func:`fetchplan._urls.redact`.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from fetchplan._urls import redact
from fetchplan.errors import InputError
from fetchplan.planner.directref import DirectRef, is_named, parse_direct

__all__ = [
    "COMMAND_LINE",
    "FormatOp",
    "ParsedRequirement",
    "RequirementOptions",
    "RequirementSet",
    "merge",
    "parse_requirement_string",
    "parse_requirements_file",
    "parse_requirements_text",
]

COMMAND_LINE = "<command line>"

# pip's req_file.COMMENT_RE and ENV_VAR_RE, so files mean here what they mean to pip.
_COMMENT = re.compile(r"(^|\s+)#.*$")
_ENV_VAR = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)\}")

# The algorithms pip accepts for --hash, with their hex digest lengths.
_HASH_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX = re.compile(r"^[0-9a-fA-F]+$")

_ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")

FormatOp = tuple[Literal["no_binary", "only_binary"], str]
"""One ``--no-binary``/``--only-binary`` value as written (comma-separated names)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ParsedRequirement:
    """One requirement line: the requirement, its ``--hash`` options and where it came from."""

    requirement: Requirement
    hashes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """``--hash=algo:hex`` options: algorithm -> lower-case hex digests, in file order."""
    source: str = COMMAND_LINE
    """``path/to/req.txt:12`` (first physical line of a continued line) or ``<command line>``."""
    constraint: bool = False
    """True when the line came from a constraints file (``-c``)."""
    direct: DirectRef | None = None
    """A direct reference (URL, path, directory, VCS; ``-e``): see :mod:`.directref`."""

    @property
    def name(self) -> str:
        """The canonical (PEP 503 normalized) project name."""
        return canonicalize_name(self.requirement.name)


@dataclass(frozen=True, kw_only=True, slots=True)
class RequirementOptions:
    """Global options found in requirements files (or given on the command line).

    ``only_binary``/``no_binary`` hold the state pip's format control reaches after applying
    every value in order: canonical names, ``:all:``; a name is never in both. ``format_ops``
    keeps the values as written so that :func:`merge` can replay them after other sets.
    """

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    """URLs as written; relative local paths joined to the including file's directory."""
    trusted_hosts: tuple[str, ...] = ()
    no_index: bool = False
    pre: bool = False
    only_binary: tuple[str, ...] = ()
    no_binary: tuple[str, ...] = ()
    prefer_binary: bool = False
    require_hashes: bool = False
    format_ops: tuple[FormatOp, ...] = ()
    origins: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """(value, where it was written: ``FILE:LINE: --option``) for the index URLs, find-links
    and trusted hosts, so that an error about a value can name its line."""

    def __repr__(self) -> str:
        # Index URLs may carry credentials; a repr is what ends up in logs and tracebacks.
        shown = ", ".join(f"{f.name}={redact(repr(getattr(self, f.name)))}" for f in fields(self))
        return f"RequirementOptions({shown})"

    def allowed_formats(self, project: str) -> frozenset[Literal["binary", "source"]]:
        """Which kinds of distribution pip would consider for ``project`` (pip's precedence)."""
        name = canonicalize_name(project)
        if name in self.only_binary:
            return frozenset({"binary"})
        if name in self.no_binary:
            return frozenset({"source"})
        if ":all:" in self.only_binary:
            return frozenset({"binary"})
        if ":all:" in self.no_binary:
            return frozenset({"source"})
        return frozenset({"binary", "source"})


@dataclass(frozen=True, kw_only=True, slots=True)
class RequirementSet:
    """Everything read from some files or arguments: requirements, constraints and options."""

    requirements: tuple[ParsedRequirement, ...] = ()
    constraints: tuple[ParsedRequirement, ...] = ()
    options: RequirementOptions = field(default_factory=RequirementOptions)


# --- options ---------------------------------------------------------------------------------

_Scope = Literal["global", "requirement"]


@dataclass(frozen=True, slots=True)
class _Option:
    long: str
    short: str | None
    takes_value: bool
    scope: _Scope
    unsupported: str | None = None
    """Why the option is refused, for options pip knows and fetchplan cannot honour yet."""


_OPTIONS = (
    _Option("index-url", "i", True, "global"),
    _Option("extra-index-url", None, True, "global"),
    _Option("no-index", None, False, "global"),
    _Option("constraint", "c", True, "global"),
    _Option("requirement", "r", True, "global"),
    _Option("editable", "e", True, "global"),
    _Option("find-links", "f", True, "global"),
    _Option("no-binary", None, True, "global"),
    _Option("only-binary", None, True, "global"),
    _Option("prefer-binary", None, False, "global"),
    _Option("require-hashes", None, False, "global"),
    _Option("pre", None, False, "global"),
    _Option("trusted-host", None, True, "global"),
    _Option("use-feature", None, True, "global"),
    _Option("hash", None, True, "requirement"),
    _Option(
        "global-option",
        None,
        True,
        "requirement",
        "'--global-option' is not supported (it configures builds, which fetchplan does not run)",
    ),
    _Option(
        "config-settings",
        None,
        True,
        "requirement",
        "'--config-settings' is not supported (it configures builds, which fetchplan does not run)",
    ),
)
_BY_LONG = {opt.long: opt for opt in _OPTIONS}
_BY_SHORT = {opt.short: opt for opt in _OPTIONS if opt.short is not None}


def _lookup_long(name: str, where: str) -> _Option:
    """An exact long option, else a unique prefix of one (optparse, and so pip, allow both)."""
    exact = _BY_LONG.get(name)
    if exact is not None:
        return exact
    matches = [opt for opt in _OPTIONS if name and opt.long.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        choices = ", ".join(f"--{opt.long}" for opt in matches)
        raise InputError(f"{where}: ambiguous option '--{name}' (could be {choices})")
    raise InputError(f"{where}: unknown option '--{redact(name)}'")


def _parse_options(text: str, where: str) -> list[tuple[_Option, str | None]]:
    """Split an option string as pip does (``shlex``) and pair every option with its value."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise InputError(f"{where}: cannot split options ({exc})") from None
    result: list[tuple[_Option, str | None]] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        inline: str | None
        if token.startswith("--"):
            name, sep, rest = token[2:].partition("=")
            opt = _lookup_long(name, where)
            inline = rest if sep else None
            shown = f"--{opt.long}"
        elif token.startswith("-") and len(token) > 1:
            found = _BY_SHORT.get(token[1])
            if found is None:
                raise InputError(f"{where}: unknown option '{redact(token[:2])}'")
            opt = found
            inline = token[2:] if len(token) > 2 else None
            shown = f"-{token[1]}"
        else:
            raise InputError(f"{where}: unexpected argument '{redact(token)}' among options")
        if opt.unsupported is not None:
            raise InputError(f"{where}: {opt.unsupported}")
        if opt.takes_value:
            if inline is None:
                if index >= len(tokens):
                    raise InputError(f"{where}: option '{shown}' needs a value")
                inline = tokens[index]
                index += 1
            result.append((opt, inline))
        else:
            if inline is not None:
                raise InputError(f"{where}: option '{shown}' takes no value")
            result.append((opt, None))
    return result


def _apply_format(op: FormatOp, only: list[str], no: list[str], where: str) -> None:
    """pip's ``FormatControl.handle_mutual_excludes``: ``:all:`` resets, ``:none:`` clears."""
    kind, value = op
    target, other = (only, no) if kind == "only_binary" else (no, only)
    if value.startswith("-"):
        raise InputError(f"{where}: --{kind.replace('_', '-')} needs a value, got '{value}'")
    new = value.split(",")
    while ":all:" in new:
        other.clear()
        target.clear()
        target.append(":all:")
        del new[: new.index(":all:") + 1]
        if ":none:" not in new:
            return
    for raw in new:
        if raw == ":none:":
            target.clear()
            continue
        name = canonicalize_name(raw.strip())
        if not name:
            continue
        if name in other:
            other.remove(name)
        if name not in target:
            target.append(name)


# --- lines -----------------------------------------------------------------------------------


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """pip's ``join_lines``: continued lines joined, numbered by their first physical line."""
    start: int | None = None
    parts: list[str] = []
    for number, physical in enumerate(text.splitlines(), start=1):
        line = physical
        if not line.endswith("\\") or _COMMENT.match(line):
            if _COMMENT.match(line):
                # A comment ends a continuation; the leading space keeps it a comment once joined.
                line = " " + line
            if parts:
                parts.append(line)
                assert start is not None
                yield start, "".join(parts)
                parts = []
            else:
                yield number, line
        else:
            if not parts:
                start = number
            parts.append(line.strip("\\"))
    if parts:
        assert start is not None
        yield start, "".join(parts)


def _expand_env(line: str, environ: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        value = environ.get(match["name"])
        return value if value else match[0]

    return _ENV_VAR.sub(substitute, line)


def _split_args_options(line: str) -> tuple[str, str]:
    """pip's ``break_args_options``: words up to the first one starting with ``-``."""
    tokens = line.split(" ")
    for index, token in enumerate(tokens):
        if token.startswith("-"):
            return " ".join(tokens[:index]), " ".join(tokens[index:])
    return line, ""


def _looks_like_url_or_path(text: str) -> bool:
    head = text.split(";", 1)[0].strip()
    lower = head.lower()
    return (
        "://" in head
        or lower.startswith(("file:", "git+", "hg+", "svn+", "bzr+", ".", "~"))
        or "/" in head
        or "\\" in head
        or lower.endswith(_ARCHIVE_SUFFIXES)
    )


def _direct(
    text: str, where: str, base_dir: Path, reader: Callable[[Path], str], *, editable: bool = False
) -> tuple[Requirement, DirectRef] | None:
    """The direct reference ``text`` is (a URL, a path, ``name @ ...``), or None."""
    if (
        not editable
        and not _looks_like_url_or_path(text)
        and "@" not in text.split(";", maxsplit=1)[0]
    ):
        return None
    return parse_direct(text, where, base_dir, editable=editable, reader=reader)


def _requirement(text: str, where: str) -> Requirement:
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "invalid"
        raise InputError(f"{where}: malformed requirement '{redact(text)}': {reason}") from None
    if req.url is not None:
        raise InputError(
            f"{where}: direct URL requirements are not supported yet: '{redact(text)}'"
        )
    return req


def _hashes(values: Sequence[str], where: str) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for value in values:
        algo, sep, digest = value.partition(":")
        if not sep or not digest:
            raise InputError(
                f"{where}: --hash must be an algorithm and a hex digest, like "
                f"--hash=sha256:<hex>; got '{value}'"
            )
        algo = algo.lower()
        length = _HASH_HEX_LENGTHS.get(algo)
        if length is None:
            allowed = ", ".join(_HASH_HEX_LENGTHS)
            raise InputError(f"{where}: --hash algorithm '{algo}' is not allowed (use {allowed})")
        if len(digest) != length or _HEX.match(digest) is None:
            raise InputError(
                f"{where}: --hash {algo} digest must be {length} hex digits, got '{digest}'"
            )
        digests = found.setdefault(algo, [])
        if digest.lower() not in digests:
            digests.append(digest.lower())
    return {algo: tuple(digests) for algo, digests in found.items()}


def parse_requirement_string(text: str, source: str = COMMAND_LINE) -> ParsedRequirement:
    """Parse one requirement as given on a command line (name, extras, specifiers, marker).

    Raises :class:`InputError` naming ``source`` for a malformed requirement, or for an
    editable, direct URL or path requirement (not supported yet).
    """
    stripped = text.strip()
    editable = False
    for flag in ("--editable", "-e"):
        if stripped.startswith(flag):
            stripped = stripped[len(flag) :].lstrip("= ").strip()
            editable = True
            break
    if not stripped:
        raise InputError(f"{source}: empty requirement")
    direct = _direct(stripped, source, Path.cwd(), _read_text, editable=editable)
    if direct is not None:
        return ParsedRequirement(requirement=direct[0], source=source, direct=direct[1])
    return ParsedRequirement(requirement=_requirement(stripped, source), source=source)


# --- files -----------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OSError(reason) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OSError(f"not UTF-8 text (byte {exc.start})") from None


def _is_url(value: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value) is not None or value.startswith("file:")


@dataclass(frozen=True, kw_only=True, slots=True)
class _Frame:
    """The file being read: its display name, directory, kind and the chain of includers."""

    display: str
    base_dir: Path
    constraint: bool
    stack: tuple[tuple[str, str], ...]


@dataclass
class _Collector:
    reader: Callable[[Path], str]
    environ: Mapping[str, str]
    requirements: list[ParsedRequirement] = field(default_factory=list)
    constraints: list[ParsedRequirement] = field(default_factory=list)
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)
    trusted_hosts: list[str] = field(default_factory=list)
    no_index: bool = False
    pre: bool = False
    prefer_binary: bool = False
    require_hashes: bool = False
    only_binary: list[str] = field(default_factory=list)
    no_binary: list[str] = field(default_factory=list)
    format_ops: list[FormatOp] = field(default_factory=list)
    origins: list[tuple[str, str]] = field(default_factory=list)

    def parse(self, text: str, frame: _Frame) -> None:
        for number, raw in _logical_lines(text):
            line = _COMMENT.sub("", raw).strip()
            if not line:
                continue
            line = _expand_env(line, self.environ)
            self._line(line, f"{frame.display}:{number}", frame)

    def _line(self, line: str, where: str, frame: _Frame) -> None:
        args, option_text = _split_args_options(line)
        options = _parse_options(option_text, where) if option_text else []
        if args:
            misplaced = [opt for opt, _ in options if opt.scope != "requirement"]
            if misplaced:
                raise InputError(
                    f"{where}: option '--{misplaced[0].long}' must be on a line of its own, "
                    "not after a requirement"
                )
            direct = _direct(args, where, frame.base_dir, self.reader)
            if direct is not None and frame.constraint and not is_named(args):
                # pip's and uv's rule: a constraint names its project (name @ URL).
                raise InputError(
                    f"{where}: unnamed requirements are not allowed as constraints: "
                    f"'{redact(args)}' (write it as 'name @ URL')"
                )
            req = direct[0] if direct is not None else _requirement(args, where)
            if frame.constraint and req.extras:
                raise InputError(f"{where}: constraints cannot have extras: '{args}'")
            hashes = _hashes([value or "" for opt, value in options if opt.long == "hash"], where)
            parsed = ParsedRequirement(
                requirement=req,
                hashes=hashes,
                source=where,
                constraint=frame.constraint,
                direct=None if direct is None else direct[1],
            )
            (self.constraints if frame.constraint else self.requirements).append(parsed)
            return
        for opt, value in options:
            if opt.scope == "requirement":
                raise InputError(f"{where}: option '--{opt.long}' must follow a requirement")
            self._global(opt, value or "", where, frame)

    def _global(self, opt: _Option, value: str, where: str, frame: _Frame) -> None:
        self._option(opt, value, where, frame)
        if opt.long in _LOCATED:
            given = self.find_links[-1] if opt.long == "find-links" else value
            self.origins.append((given, f"{where}: --{opt.long}"))

    def _option(self, opt: _Option, value: str, where: str, frame: _Frame) -> None:
        match opt.long:
            case "index-url":
                self.index_url = value
            case "extra-index-url":
                self.extra_index_urls.append(value)
            case "no-index":
                self.no_index = True
            case "find-links":
                if not (_is_url(value) or Path(value).is_absolute()):
                    value = os.path.normpath(frame.base_dir / value)
                self.find_links.append(value)
            case "trusted-host":
                self.trusted_hosts.append(value)
            case "pre":
                self.pre = True
            case "prefer-binary":
                self.prefer_binary = True
            case "require-hashes":
                self.require_hashes = True
            case "use-feature":
                pass  # pip feature flags change pip's own behaviour, not what is requested
            case "editable":
                if frame.constraint:
                    raise InputError(f"{where}: editable requirements cannot be constraints")
                found = _direct(value, where, frame.base_dir, self.reader, editable=True)
                assert found is not None
                self.requirements.append(
                    ParsedRequirement(requirement=found[0], source=where, direct=found[1])
                )
            case "no-binary" | "only-binary":
                op: FormatOp = ("no_binary" if opt.long == "no-binary" else "only_binary", value)
                _apply_format(op, self.only_binary, self.no_binary, where)
                self.format_ops.append(op)
            case "requirement" | "constraint":
                # pip's rule: -r inside a constraints file still names requirements.
                self._nested(value, opt.long == "constraint", where, frame)
            case _:  # pragma: no cover - every option in _OPTIONS is handled above
                raise InputError(f"{where}: option '--{opt.long}' is not handled")

    def _nested(self, name: str, constraint: bool, where: str, frame: _Frame) -> None:
        if _is_url(name):
            raise InputError(
                f"{where}: requirements files from URLs are not supported yet: '{redact(name)}'"
            )
        path = Path(os.path.normpath(frame.base_dir / name))
        key = os.path.normcase(str(path))
        shown = Path(name) if Path(name).is_absolute() else Path(frame.display).parent / name
        display = os.path.normpath(shown)
        keys = [k for k, _ in frame.stack]
        if key in keys:
            chain = " -> ".join([d for _, d in frame.stack[keys.index(key) :]] + [display])
            raise InputError(f"{where}: include cycle: {chain}")
        try:
            text = self.reader(path)
        except OSError as exc:
            raise InputError(f"{where}: cannot read '{display}': {exc}") from None
        child = _Frame(
            display=display,
            base_dir=path.parent,
            constraint=constraint,
            stack=(*frame.stack, (key, display)),
        )
        self.parse(text, child)

    def result(self) -> RequirementSet:
        return RequirementSet(
            requirements=tuple(self.requirements),
            constraints=tuple(self.constraints),
            options=RequirementOptions(
                index_url=self.index_url,
                extra_index_urls=_unique(self.extra_index_urls),
                find_links=_unique(self.find_links),
                trusted_hosts=_unique(self.trusted_hosts),
                no_index=self.no_index,
                pre=self.pre,
                only_binary=tuple(self.only_binary),
                no_binary=tuple(self.no_binary),
                prefer_binary=self.prefer_binary,
                require_hashes=self.require_hashes,
                format_ops=tuple(self.format_ops),
                origins=tuple(self.origins),
            ),
        )


_LOCATED = frozenset({"index-url", "extra-index-url", "find-links", "trusted-host"})
"""The options whose values :attr:`RequirementOptions.origins` traces to their lines."""


def _unique(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def parse_requirements_text(
    text: str,
    source_name: str,
    base_dir: Path,
    *,
    constraint: bool = False,
    reader: Callable[[Path], str] = _read_text,
    environ: Mapping[str, str] | None = None,
) -> RequirementSet:
    """Parse the text of a requirements (or, with ``constraint``, constraints) file.

    ``source_name`` names the file in ``source`` fields and errors; nested ``-r``/``-c`` paths
    are joined to ``base_dir`` (and to ``source_name``'s directory for display) and read with
    ``reader``, which raises :class:`OSError` when a file cannot be read. ``environ`` (default
    ``os.environ``) supplies ``${VAR}`` values. Raises :class:`InputError` naming ``file:line``.
    """
    collector = _Collector(reader=reader, environ=os.environ if environ is None else environ)
    root_key = os.path.normcase(os.path.normpath(base_dir / Path(source_name).name))
    frame = _Frame(
        display=source_name,
        base_dir=base_dir,
        constraint=constraint,
        stack=((root_key, source_name),),
    )
    collector.parse(text, frame)
    return collector.result()


def parse_requirements_file(
    path: Path, *, constraint: bool = False, environ: Mapping[str, str] | None = None
) -> RequirementSet:
    """Read and parse the requirements file at ``path`` (see :func:`parse_requirements_text`).

    Sources name the file as given; nested files and relative find-links resolve against the
    file's absolute directory. Raises :class:`InputError` when the file cannot be read.
    """
    try:
        text = _read_text(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read requirements file: {exc}") from None
    base_dir = Path(os.path.normpath(Path.cwd() / path)).parent
    return parse_requirements_text(
        text, str(path), base_dir, constraint=constraint, reader=_read_text, environ=environ
    )


def merge(*sets: RequirementSet) -> RequirementSet:
    """Combine sets in order, as pip combines the command line and each ``-r`` file.

    Requirements and constraints are concatenated; a later ``index_url`` replaces an earlier
    one; URL and host lists are concatenated without duplicates; flags are or-ed; binary-format
    values are replayed in order (a set built without ``format_ops`` contributes its
    ``no_binary`` then ``only_binary`` entries).
    """
    requirements: list[ParsedRequirement] = []
    constraints: list[ParsedRequirement] = []
    index_url: str | None = None
    extra: list[str] = []
    find_links: list[str] = []
    trusted: list[str] = []
    only: list[str] = []
    no: list[str] = []
    ops: list[FormatOp] = []
    origins: list[tuple[str, str]] = []
    no_index = pre = prefer_binary = require_hashes = False
    for item in sets:
        requirements.extend(item.requirements)
        constraints.extend(item.constraints)
        opts = item.options
        if opts.index_url is not None:
            index_url = opts.index_url
        extra.extend(opts.extra_index_urls)
        find_links.extend(opts.find_links)
        trusted.extend(opts.trusted_hosts)
        origins.extend(opts.origins)
        no_index = no_index or opts.no_index
        pre = pre or opts.pre
        prefer_binary = prefer_binary or opts.prefer_binary
        require_hashes = require_hashes or opts.require_hashes
        replay: list[FormatOp] = list(opts.format_ops)
        if not replay:
            if opts.no_binary:
                replay.append(("no_binary", ",".join(opts.no_binary)))
            if opts.only_binary:
                replay.append(("only_binary", ",".join(opts.only_binary)))
        for op in replay:
            _apply_format(op, only, no, "<merge>")
        ops.extend(replay)
    return RequirementSet(
        requirements=tuple(requirements),
        constraints=tuple(constraints),
        options=RequirementOptions(
            index_url=index_url,
            extra_index_urls=_unique(extra),
            find_links=_unique(find_links),
            trusted_hosts=_unique(trusted),
            no_index=no_index,
            pre=pre,
            only_binary=tuple(only),
            no_binary=tuple(no),
            prefer_binary=prefer_binary,
            require_hashes=require_hashes,
            format_ops=tuple(ops),
            origins=tuple(origins),
        ),
    )
