"""``fetchplan export``: a plan as a pip report, a PEP 751 lock file, hashed requirements or a
CycloneDX SBOM."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from fetchplan._fs import write_output
from fetchplan.errors import FetchplanError
from fetchplan.formats import FORMATS, export_plan
from fetchplan.schemas.plan import load_plan

__all__ = ["register", "run"]

log = logging.getLogger(__name__)


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "export",
        parents=[common],
        help="write a plan in another tool's format",
        description=(
            "Write PLAN as pip's installation report (JSON), a PEP 751 pylock.toml, a "
            "requirements file of hashed pins that `pip install --require-hashes -r` accepts, "
            "or a CycloneDX 1.6 JSON SBOM of every artifact (build dependencies included, "
            "with scope excluded)."
        ),
    )
    p.add_argument("plan", type=Path, metavar="PLAN", help="the plan file (JSON or YAML)")
    p.add_argument(
        "--format", required=True, choices=(*FORMATS, "cyclonedx"), help="the format to write"
    )
    p.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write to FILE (default: standard output)"
    )
    p.add_argument(
        "--target",
        metavar="NAME",
        help="the plan target a pip report describes (needed when the plan has several)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    plan, _ = load_plan(args.plan)
    if args.format == "cyclonedx":
        # cyclonedx-python-lib is loaded for this format only, and is an optional extra: the
        # executor's air-gapped installs need none of it.
        from fetchplan.formats.cyclonedx import dumps_cyclonedx

        try:
            text = dumps_cyclonedx(plan)
        except ModuleNotFoundError as exc:
            raise FetchplanError(
                f"export --format cyclonedx needs {exc.name or 'cyclonedx-python-lib'}, which is "
                "not installed: pip install 'fetchplan[sbom]'"
            ) from None
    else:
        text = export_plan(plan, args.format, target=args.target)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    name = args.output.name
    if args.format == "pylock" and not (
        name == "pylock.toml" or (name.startswith("pylock.") and name.endswith(".toml"))
    ):
        log.warning("PEP 751 lock files are named pylock.toml or pylock.NAME.toml, not %s", name)
    write_output(args.output, text.encode("utf-8"))
    log.info("wrote %s", args.output)
    return 0
