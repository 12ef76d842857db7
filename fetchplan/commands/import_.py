"""``fetchplan import``: build a plan from a pip report, a pylock.toml or hashed requirements."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fetchplan.commands.plan import add_index_arguments, add_request_arguments, index_values
from fetchplan.errors import FieldProblem, FileFormatError
from fetchplan.formats import FORMATS, import_plan
from fetchplan.schemas.plan import write_plan

__all__ = ["register", "run"]

log = logging.getLogger(__name__)


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "import",
        parents=[common],
        help="build a plan from a pip report, pylock.toml or hashed requirements",
        description=(
            "Build a plan from FILE: the JSON of `pip install --dry-run --report`, a PEP 751 "
            "pylock.toml, or a requirements file whose pins all carry --hash (its format is "
            "told by its content). The plan serves one target: the one FILE records when "
            "fetchplan wrote it, else this interpreter. The pinned files of a requirements "
            "file fetchplan did not write are looked up by hash on the indexes `plan` would "
            "use (the options below, the file's own --index-url lines, PIP_INDEX_URL and "
            "pip's configuration, then pip's default index); nothing is resolved."
        ),
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="PLAN", help="plan to write")
    p.add_argument("--format", choices=FORMATS, help="FILE's format (default: told by content)")
    p.add_argument("--target", metavar="NAME", help="which recorded target to import")
    p.add_argument(
        "--destination",
        default="wheels",
        metavar="DIR",
        help="download directory recorded in the plan, relative to it (default: %(default)s)",
    )
    idx = p.add_argument_group("indexes (to look a requirements file's pins up by hash)")
    add_index_arguments(
        idx,
        index_url_help="the main index; for a pip report, the index its files came from (pip "
        "reports do not say)",
    )
    add_request_arguments(idx, jobs_help="pins looked up in parallel (default: 8)", jobs_default=8)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fetchplan.formats.lookup import IndexLookup
    from fetchplan.planner.api import PlanOptions

    path: Path = args.file
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(str(path), [FieldProblem("", f"cannot read: {exc}")]) from exc
    options = PlanOptions(requirement_files=(path,), **index_values(args))
    with IndexLookup(options) as lookup:
        plan = import_plan(
            text,
            str(path),
            fmt=args.format,
            target=args.target,
            destination=args.destination,
            index_url=args.index_url,
            lookup=lookup,
            base_dir=path.parent,
        )
    write_plan(args.output, plan, output=True)
    log.info("wrote %s: %d artifacts", args.output, len(plan.artifacts))
    return 0
