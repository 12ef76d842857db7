"""``fetchplan manifest merge``: combine the manifests of one plan's shards into one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register", "run_merge"]


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    p = subparsers.add_parser(
        "manifest",
        parents=[common],
        help="work with verified manifests",
        description="Work with the verified manifests `fetchplan fetch` writes.",
    )
    actions = p.add_subparsers(dest="manifest_command", metavar="ACTION", required=True)
    merge = actions.add_parser(
        "merge",
        parents=[common],
        help="combine the manifests of a plan's shards",
        description=(
            "Combine manifests of the same plan (for example from `fetchplan fetch --shard I/N` "
            "runs) into one, with paths relative to the output's directory and the plan copied "
            "beside it. Fails, naming each problem, if the manifests disagree about the plan, "
            "repeat a shard, list a file twice with different hashes, point at missing files, "
            "or (without --allow-incomplete) leave out artifacts of the plan."
        ),
    )
    merge.add_argument("manifests", type=Path, nargs="+", metavar="MANIFEST")
    merge.add_argument(
        "-o", "--output", type=Path, required=True, metavar="FILE", help="the merged manifest"
    )
    merge.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="write the merge even if some of the plan's artifacts are in no manifest",
    )
    merge.set_defaults(func=run_merge)


def run_merge(args: argparse.Namespace) -> int:
    from fetchplan.executor.manifests import merge_manifests

    merged = merge_manifests(args.manifests, args.output, allow_incomplete=args.allow_incomplete)
    if not (getattr(args, "quiet", None) or 0):
        sys.stdout.write(f"{args.output}: {len(merged.artifacts)} artifacts\n")
    return 0
