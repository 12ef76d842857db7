"""The ``fetchplan`` command line: global options, sub-command dispatch, errors to exit codes.

Each sub-command lives in ``fetchplan.commands.<name>`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` (``Callable[[argparse.Namespace], int]``). Only this
module turns a :class:`FetchplanError` into a one-line message and an exit code.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from fetchplan import __version__
from fetchplan._urls import redact
from fetchplan.errors import FetchplanError

__all__ = ["build_parser", "entry_point", "main"]

# Sub-command modules, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "plan",
    "show",
    "fetch",
    "manifest",
    "bundle",
    "verify",
    "install",
    "run",
    "export",
    "import_",
    "audit",
    "diff",
    "report",
    "cache",
)

log = logging.getLogger(__name__)


def _global_options(*, top: bool) -> argparse.ArgumentParser:
    # Sub-commands accept the same options; their defaults are suppressed there so that
    # ``fetchplan -v plan`` keeps the -v given before the sub-command.
    common = argparse.ArgumentParser(
        add_help=False, argument_default=None if top else argparse.SUPPRESS
    )
    group = common.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="count", help="more output (repeatable)")
    group.add_argument("-q", "--quiet", action="count", help="less output")
    group.add_argument(
        "--log",
        type=Path,
        metavar="FILE",
        help="append a detailed log to FILE (safe to share between processes)",
    )
    return common


def _named_command(argv: Sequence[str]) -> str | None:
    """The module of the sub-command ``argv`` names, when that is plain without parsing.

    Only that module is then imported: each costs start-up time (tens of milliseconds for
    all). None (load every command) when help or the version is asked before a command.
    """
    modules = {name.rstrip("_"): name for name in COMMANDS}
    words = iter(argv)
    for word in words:
        if word in ("-h", "--help", "--version"):
            return None
        if word == "--log":
            next(words, None)
        elif not word.startswith("-"):
            return modules.get(word)
    return None


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are one line (exit status 2) ending with the
    closest option or command name ("did you mean --index-url?"), as Python 3.14's
    ``suggest_on_error`` does, and pointing at ``--help`` instead of printing the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            2,
            f"{self.prog}: error: {message}{_suggestion(self, message)} (see {self.prog} --help)\n",
        )


def _suggestion(parser: argparse.ArgumentParser, message: str) -> str:
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice is not None:
        words, known = [choice[1]], re.findall(r"'([^']*)'", choice[2])
    elif message.startswith("unrecognized arguments: "):
        given = message.removeprefix("unrecognized arguments: ").split()
        words = [w.partition("=")[0] for w in given if w.startswith("-")]
        known = _option_strings(parser)
    else:
        return ""
    import difflib  # only for a mistyped command line

    for word in words:
        close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
        if close:
            return f"; did you mean {close[0]}?"
    return ""


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [o for action in parser._actions for o in action.option_strings if o.startswith("--")]


def _chosen(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub-)parser of the command ``args`` holds, to which unknown options belong."""
    while True:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = None if sub is None else sub.choices.get(getattr(args, sub.dest, None) or "")
        if chosen is None:
            return parser
        parser = chosen


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command-line parser; given ``argv``, only with the sub-command it names (if any)."""
    parser = _Parser(
        prog="fetchplan",
        description="Plan, fetch and install Python requirements as three inspectable steps.",
        parents=[_global_options(top=True)],
    )
    common = _global_options(top=False)
    parser.add_argument("--version", action="version", version=f"fetchplan {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    named = None if argv is None else _named_command(argv)
    for name in COMMANDS if named is None else (named,):
        module = importlib.import_module(f"fetchplan.commands.{name}")
        module.register(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(arguments)
    args, unknown = parser.parse_known_args(arguments)
    if unknown:
        _chosen(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    from fetchplan._log import configure_logging

    configure_logging((args.verbose or 0) - (args.quiet or 0), args.log)
    try:
        code: int = args.func(args)
    except FetchplanError as exc:
        log.debug("failed", exc_info=True)
        print(f"fetchplan: error: {redact(str(exc))}", file=sys.stderr)  # noqa: T201
        return exc.exit_code
    except OSError as exc:
        # What the library did not translate: a file or directory it could not use.
        log.debug("failed", exc_info=True)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"fetchplan: error: {redact(where + (exc.strerror or str(exc)))}", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        print("fetchplan: interrupted", file=sys.stderr)  # noqa: T201
        return 130
    return code


def entry_point() -> None:
    """``fetchplan`` and ``python -m fetchplan``: :func:`main`, then exit with its code.

    Before the interpreter shuts down, every object the run made is moved out of the garbage
    collector's reach (:func:`gc.freeze`): the collection at shut-down would otherwise walk
    them all just before the process ends and its memory is returned anyway (0.05-0.08 s
    after planning the benchmark's large set). Only here: tests call :func:`main` in-process, where
    frozen objects would never be collected.
    """
    from fetchplan import _malloc

    _malloc.tune()
    code = main()
    gc.freeze()
    raise SystemExit(code)
