"""``fetchplan diff``: what changed between two plans."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fetchplan.review.diff import diff_plans, render_diff
from fetchplan.schemas.plan import load_plan

__all__ = ["register", "run"]


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "diff",
        parents=[common],
        help="compare two plans",
        description=(
            "List projects added, removed, upgraded and downgraded from OLD to NEW, files whose "
            "URL, host or size changed, and, as warnings, files of an unchanged project version "
            "whose hashes changed, projects whose PEP 740 publisher changed or whose "
            "attestations disappeared, and projects whose PEP 792 status changed to "
            "archived, deprecated or quarantined. Exit status 1 when there is such a warning."
        ),
    )
    p.add_argument("old", type=Path, metavar="OLD")
    p.add_argument("new", type=Path, metavar="NEW")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    old, _ = load_plan(args.old)
    new, _ = load_plan(args.new)
    diff = diff_plans(old, new)
    if args.format == "json":
        sys.stdout.write(json.dumps(diff.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render_diff(diff))
    return 1 if diff.warnings else 0
