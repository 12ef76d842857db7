"""``fetchplan cache dir|info|clean|prune|verify``: show, trim and check the cache directory.

Each action is an entry of :data:`ACTIONS` (name, help, a function adding its arguments, a
function running it), so another action is one more entry. What the cache holds and where is
described once, in :mod:`fetchplan.cache`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fetchplan.commands._args import non_negative_seconds
from fetchplan.errors import InputError

__all__ = ["ACTIONS", "Action", "cache_root", "register"]

_DESCRIPTION = """\
Show, trim and check fetchplan's cache: downloaded artifacts, index pages, distribution
metadata, sdist metadata prepared by build backends and the wheel store of unpacked wheels
(see 'fetchplan cache info'). Plans and fetches running meanwhile are safe: what is removed
is only a miss for them. An install linking from the store at that moment fails, and an
environment installed with --link-mode symlink breaks when its store entries go.
"""


@dataclass(frozen=True, slots=True)
class Action:
    """One ``fetchplan cache`` sub-command."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Path], int]


def cache_root(args: argparse.Namespace) -> Path:
    """The cache directory ``args`` name (``--cache-dir``), else the user's."""
    from fetchplan.cache import default_cache_dir

    given: Path | None = getattr(args, "cache_dir", None)
    return given if given is not None else default_cache_dir()


def _no_arguments(_parser: argparse.ArgumentParser) -> None:
    return None


def _quiet(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "quiet", 0) or 0)


def _run_dir(_args: argparse.Namespace, root: Path) -> int:
    sys.stdout.write(f"{root}\n")
    return 0


def _run_info(_args: argparse.Namespace, root: Path) -> int:
    from fetchplan._text import human_size
    from fetchplan.cache import usage

    rows = usage(root)
    width = max(len(row.section.name) for row in rows)
    sys.stdout.write(f"{root}\n")
    for row in rows:
        sys.stdout.write(
            f"  {row.section.name:<{width}}  {row.files:>7} files  {human_size(row.bytes):>9}  "
            f"{row.section.directory}/: {row.section.description}\n"
        )
    total = sum(row.bytes for row in rows)
    files = sum(row.files for row in rows)
    sys.stdout.write(f"  {'total':<{width}}  {files:>7} files  {human_size(total):>9}\n")
    return 0


def _clean_arguments(parser: argparse.ArgumentParser) -> None:
    from fetchplan.cache import SECTIONS

    parser.add_argument(
        "sections",
        nargs="*",
        metavar="SECTION",
        help="only these sections: " + ", ".join(s.name for s in SECTIONS) + " (default: all)",
    )


def _run_clean(args: argparse.Namespace, root: Path) -> int:
    from fetchplan._text import human_size
    from fetchplan.cache import SECTIONS, clean

    by_name = {section.name: section for section in SECTIONS}
    unknown = [name for name in args.sections if name not in by_name]
    if unknown:
        raise InputError(f"no cache section {unknown[0]!r}; sections: {', '.join(by_name)}")
    chosen = tuple(by_name[name] for name in args.sections) if args.sections else SECTIONS
    files, size = clean(root, chosen)
    if not _quiet(args):
        sys.stdout.write(f"{root}: removed {files} files, {human_size(size)}\n")
    return 0


def _prune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--unused-days",
        type=non_negative_seconds,
        metavar="DAYS",
        help="also remove index pages, metadata and unpacked wheels not used for DAYS days",
    )


def _run_prune(args: argparse.Namespace, root: Path) -> int:
    from fetchplan._text import human_size
    from fetchplan.cache import prune
    from fetchplan.install.store import WheelStore, default_store_dir

    files, size = prune(root, unused_days=args.unused_days)
    store_files, store_size = WheelStore(default_store_dir(root)).prune(
        unused_days=args.unused_days
    )
    files, size = files + store_files, size + store_size
    if not _quiet(args):
        sys.stdout.write(f"{root}: pruned {files} files, {human_size(size)}\n")
    return 0


def _run_verify(args: argparse.Namespace, root: Path) -> int:
    from fetchplan.install.store import WheelStore, default_store_dir

    store = WheelStore(default_store_dir(root))
    entries, files, problems = store.verify()
    for problem in problems:
        sys.stdout.write(
            f"evicted {problem.filename} ({problem.sha256}): {problem.path}: {problem.reason}\n"
        )
    if not _quiet(args):
        sys.stdout.write(
            f"verified {entries} wheels ({files} files) in {store.root}: {len(problems)} evicted\n"
        )
    return 1 if problems else 0


ACTIONS: tuple[Action, ...] = (
    Action("dir", "print the cache directory", _no_arguments, _run_dir),
    Action("info", "what the cache holds, per section", _no_arguments, _run_info),
    Action("clean", "remove everything (or the sections named)", _clean_arguments, _run_clean),
    Action(
        "prune",
        "remove temporary files left by interrupted runs, corrupt entries and, with "
        "--unused-days, entries long unused",
        _prune_arguments,
        _run_prune,
    ),
    Action(
        "verify",
        "re-hash the wheel store against each wheel's RECORD and evict what changed "
        "(exit status 1 when something was evicted: environments hard-linked to it hold "
        "the changed file; reinstall them with --reinstall)",
        _no_arguments,
        _run_verify,
    ),
)
"""The actions of ``fetchplan cache``, in the order ``--help`` lists them."""


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    p = subparsers.add_parser(
        "cache",
        parents=[common],
        help="show and trim the cache directory",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="cache_action", metavar="ACTION", required=True)
    for action in ACTIONS:
        sub = actions.add_parser(action.name, parents=[common], help=action.help)
        sub.add_argument(
            "--cache-dir",
            type=Path,
            metavar="DIR",
            help="the cache directory (default: the user's cache directory)",
        )
        action.arguments(sub)
        sub.set_defaults(func=_runner(action))


def _runner(action: Action) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return action.run(args, cache_root(args))

    return run
