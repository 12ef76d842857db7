"""``fetchplan bundle PLAN -o OUT``: fetch a plan into a self-describing bundle to carry offline."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fetchplan.bundle.provenance import Getter

__all__ = ["register", "run"]

_DESCRIPTION = """\
Fetch and verify every artifact of PLAN (like `fetchplan fetch`) into OUT, and make OUT a
bundle: plan.json, manifest.json, the files, a static PEP 503 index over them (simple/), the
PEP 740 provenance object of each file whose plan entry names one (provenance/; `fetchplan
audit OUT --attestations` verifies them offline), a README.txt and bundle.json. OUT is a
directory, or a .tar/.tar.gz/.tgz file. Files already in the plan's destination or the cache
are taken from there (re-verified), --mirror names another place to look first, and --offline
fetches nothing from the network at all (nor provenance: the bundle then carries none). Carry
the bundle across, then `fetchplan verify OUT` and `fetchplan install OUT --venv DIR`; pip and
uv install from it too (see OUT/README.txt). --build-local also carries, in built/, the wheels
of the plan's local directory and VCS artifacts built for this Python (install uses one when
it was built from the very archive verified and fits the interpreter; else it builds from the
archive, carried too); a plan with an editable is refused then. Exit status: 0 bundle
written, 1 some artifacts failed (run the same command again to resume), 2 bad plan or
options, 130 interrupted.
"""


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    from fetchplan.commands.fetch import add_fetch_arguments

    p = subparsers.add_parser(
        "bundle",
        parents=[common],
        help="fetch a plan into a bundle to install from offline",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("plan", type=Path, metavar="PLAN", help="the plan file (JSON or YAML)")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="OUT",
        help="the bundle: a directory, or a file ending in .tar, .tar.gz or .tgz",
    )
    p.add_argument(
        "--build-local",
        action="store_true",
        help="also carry wheels of the plan's local directory and VCS artifacts, built for "
        "the Python running fetchplan",
    )
    add_fetch_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fetchplan.commands._shared import fetch_summary_lines, reporter, sigterm_interrupts
    from fetchplan.commands.fetch import fetch_options

    options = fetch_options(args)
    quiet = (getattr(args, "quiet", None) or 0) > 0
    shown = reporter(args.progress, quiet, sys.stderr)
    from fetchplan.pipeline import bundle

    host = None
    if args.build_local:
        from fetchplan.install import TargetInterpreter

        host = TargetInterpreter.query(Path(sys.executable))
    with sigterm_interrupts(), _provenance_getter(args) as provenance:
        result = bundle(args.plan, args.output, options, shown, provenance, build_local=host)
    fetched = result.fetch
    for failure in fetched.failures:
        sys.stderr.write(f"fetchplan: failed: {failure.destination}: {failure.reason}\n")
    if not quiet:
        for line in fetch_summary_lines(fetched)[:2]:
            sys.stdout.write(f"{line}\n")
        if result.path is not None:
            sys.stdout.write(f"bundle: {result.path} ({len(result.files)} files)\n")
    if fetched.interrupted:
        return 130
    if result.path is None:
        sys.stderr.write("fetchplan: bundle not written: not every artifact was verified\n")
        return 1
    return 0


@contextlib.contextmanager
def _provenance_getter(args: argparse.Namespace) -> Iterator[Getter | None]:
    """Fetches the plan's provenance URLs over a session of its indexes' credentials and
    TLS settings; None with --offline or when the plan names no provenance."""
    from fetchplan.schemas.plan import load_plan

    plan = None if args.offline else load_plan(args.plan)[0]
    if plan is None or all(a.provenance is None for a in plan.artifacts):
        yield None
        return
    from fetchplan.planner.attestations import plan_getter

    with plan_getter(plan) as get:
        yield get
