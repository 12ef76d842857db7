"""``fetchplan verify BUNDLE``: re-check every file of a bundle, offline."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

__all__ = ["register", "run"]

_DESCRIPTION = """\
Check a bundle (directory or tar, as `fetchplan bundle` writes it) or a fetch destination
(or its manifest.json): the plan, manifest and bundle.json against their schemas, the plan's
digest, every file's size and sha256, every artifact of the plan verified, the index pages
exactly as the manifest makes them. Nothing is fetched. Exit status: 0 all good (warnings,
such as files nobody listed, are printed but do not fail), 1 one line per problem found.
"""


def _sha256(text: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise argparse.ArgumentTypeError("not a sha256 (64 hex digits)")
    return text.lower()


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    p = subparsers.add_parser(
        "verify",
        parents=[common],
        help="re-check every hash of a bundle or fetch destination",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "bundle",
        type=Path,
        metavar="BUNDLE",
        help="a bundle directory or tar, a fetch destination, or a manifest.json",
    )
    p.add_argument(
        "--plan-sha256",
        type=_sha256,
        metavar="HEX",
        help=(
            "the plan digest you expect (plan.sha256 of bundle.json or manifest.json where "
            "the bundle was made), carried across apart"
        ),
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fetchplan.bundle import verify_bundle

    report = verify_bundle(args.bundle, plan_sha256=args.plan_sha256)
    for warning in report.warnings:
        sys.stderr.write(f"fetchplan: warning: {warning}\n")
    for problem in report.problems:
        sys.stderr.write(f"fetchplan: {problem}\n")
    if report.problems:
        count = len(report.problems)
        sys.stderr.write(f"fetchplan: {report.where}: {count} problem{'s' if count != 1 else ''}\n")
        return 1
    if not (getattr(args, "quiet", None) or 0):
        kind = "bundle" if report.is_bundle else "destination"
        sys.stdout.write(
            f"{report.where}: {kind} verified: {report.files} files, {report.bytes} bytes\n"
        )
    return 0
