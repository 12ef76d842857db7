"""``fetchplan import``: build a plan from a pip report, a pylock.toml or hashed requirements."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fetchplan.errors import FieldProblem, FileFormatError, InputError
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
    idx.add_argument(
        "-i",
        "--index-url",
        metavar="URL",
        help="the main index; for a pip report, the index its files came from (pip reports "
        "do not say)",
    )
    idx.add_argument(
        "--extra-index-url", dest="extra_index_urls", action="append", default=[], metavar="URL",
        help="another index, searched after the main one (repeatable)",
    )  # fmt: skip
    idx.add_argument(
        "-f", "--find-links", dest="find_links", action="append", default=[],
        metavar="LOCATION", help="a directory or HTML page of files (repeatable)",
    )  # fmt: skip
    idx.add_argument("--no-index", action="store_true", help="use only --find-links locations")
    idx.add_argument(
        "--trusted-host", dest="trusted_hosts", action="append", default=[], metavar="HOST",
        help="accept plain http:// (and unverified https) for HOST or HOST:PORT (repeatable)",
    )  # fmt: skip
    idx.add_argument(
        "--isolated", action="store_true",
        help="ignore PIP_* environment variables and pip's configuration files",
    )  # fmt: skip
    idx.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS",
        help="per-request timeout (default: 30)",
    )  # fmt: skip
    idx.add_argument(
        "-j", "--jobs", type=int, default=8, metavar="N",
        help="pins looked up in parallel (default: 8)",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fetchplan.formats.lookup import IndexLookup
    from fetchplan.planner.api import PlanOptions

    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, not {args.jobs}")
    if args.timeout <= 0:
        raise InputError(f"--timeout must be positive, not {args.timeout}")
    path: Path = args.file
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(str(path), [FieldProblem("", f"cannot read: {exc}")]) from exc
    options = PlanOptions(
        requirement_files=(path,),
        index_url=args.index_url,
        extra_index_urls=tuple(args.extra_index_urls),
        find_links=tuple(args.find_links),
        no_index=args.no_index,
        trusted_hosts=tuple(args.trusted_hosts),
        isolated=args.isolated,
        timeout=args.timeout,
        jobs=args.jobs,
    )
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
    write_plan(args.output, plan)
    log.info("wrote %s: %d artifacts", args.output, len(plan.artifacts))
    return 0
