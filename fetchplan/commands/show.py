"""``fetchplan show PLAN``: a plan as a table a person can read, with totals.

One row per artifact (name, version, size, host, status with the project's PEP 792 status
when not active, the targets it serves when the plan has several, the verified PEP 740
publishers when the plan records any) and totals: artifacts, bytes to download, bytes
already satisfied by the destination or the cache. The plan is validated when read, so a bad
plan is rejected with its file and the dotted path of the bad field.
:func:`render_table` is pure; ``--graph dot|mermaid`` prints
:func:`fetchplan.review.graph.render_graph` instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fetchplan._text import human_size
from fetchplan.review.graph import GRAPH_FORMATS, render_graph
from fetchplan.schemas.plan import Artifact, Plan, load_plan

__all__ = ["publisher_of", "register", "render_table", "run", "status_of", "targets_of"]

_HEADERS = ("NAME", "VERSION", "SIZE", "HOST", "STATUS")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``show`` sub-command."""
    p = subparsers.add_parser(
        "show",
        parents=[common],
        help="show a plan as a table with totals",
        description="Print a plan's artifacts (name, version, size, host, status) and totals: "
        "artifacts, bytes to download, bytes already satisfied. The plan is validated first.",
    )
    p.add_argument("plan", type=Path, metavar="PLAN", help="a plan written by 'fetchplan plan'")
    p.add_argument(
        "--graph",
        choices=GRAPH_FORMATS,
        help="print the dependency graph (Graphviz dot or Mermaid) instead of the table",
    )
    p.set_defaults(func=run)


def status_of(artifact: Artifact) -> str:
    """``fetch``, ``in destination``, ``in cache`` or (an editable) ``in place``, flagged when
    it has no hash, is yanked, is not a wheel, is editable or direct."""
    if artifact.editable:
        status = "in place"  # installed from its directory: nothing is fetched
    elif artifact.satisfied_by is None:
        status = "fetch"
    elif artifact.satisfied_by.source == "destination":
        status = "in destination"
    else:
        status = "in cache"
    notes = []
    if artifact.sha256 is None:
        notes.append("no hash")
    if artifact.yanked:
        notes.append("yanked")
    if artifact.kind != "wheel":
        notes.append(artifact.kind)
    if artifact.editable:
        notes.append("editable")
    if artifact.direct:
        notes.append("direct")
    if artifact.build_dependency:
        notes.append("build dependency")
    if artifact.project_status is not None:
        notes.append(artifact.project_status.status)
    return f"{status} ({', '.join(notes)})" if notes else status


def _host(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return "local"
    return parts.netloc


def targets_of(artifact: Artifact, plan: Plan) -> str:
    """The targets ``artifact`` serves, for a table cell: names, ``all``, and builds marked.

    A file only builds use shows the targets whose builds use it; a file installed in some
    targets and used by the builds of others shows those as ``build:NAME``.
    """
    names = [t.name for t in plan.targets]
    served = names if artifact.targets is None else list(artifact.targets)
    cell = "all" if served == names and len(names) > 1 else ",".join(served)
    extra = [n for n in artifact.build_targets or () if n not in served]
    return ",".join([cell, *(f"build:{n}" for n in extra)]) if extra else cell


def render_table(plan: Plan) -> str:
    """The table and totals for ``plan``, as text ending in a newline."""
    lines = [*_table_lines(plan), "", _totals_line(plan), *_notes(plan)]
    return "\n".join(lines) + "\n"


def publisher_of(artifact: Artifact) -> str:
    """The verified PEP 740 publishers of ``artifact`` as a policy names them, or ``-``."""
    identities = dict.fromkeys(b.identity for b in artifact.attestations or ())
    return ",".join(identities) or "-"


def _table_lines(plan: Plan) -> list[str]:
    """One line per artifact under the headers; sizes right-aligned, other cells left.

    A TARGETS column when the plan has several targets; a PUBLISHER column (the verified
    PEP 740 publishers) when some artifact's attestations were verified."""
    several = len(plan.targets) > 1
    attested = any(a.attestations for a in plan.artifacts)
    headers = (
        *_HEADERS,
        *(("TARGETS",) if several else ()),
        *(("PUBLISHER",) if attested else ()),
    )
    rows = [
        (a.name, a.version, human_size(a.size), _host(a.url), status_of(a))
        + ((targets_of(a, plan),) if several else ())
        + ((publisher_of(a),) if attested else ())
        for a in plan.artifacts
    ]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = []
    for row in (headers, *rows):
        cells = [
            cell.rjust(widths[i]) if i == 2 else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def _totals_line(plan: Plan) -> str:
    """How many artifacts, and bytes, are to download and how many are already satisfied."""
    pending = [a for a in plan.artifacts if a.satisfied_by is None]
    done = [a for a in plan.artifacts if a.satisfied_by is not None]
    to_fetch = sum(a.size or 0 for a in pending)
    satisfied = sum(a.size or 0 for a in done)
    unknown = sum(1 for a in pending if a.size is None)
    return (
        f"{len(plan.artifacts)} artifacts: {len(pending)} to download "
        f"({human_size(to_fetch)}, {to_fetch} bytes"
        + (f", {unknown} of unknown size" if unknown else "")
        + f"), {len(done)} already satisfied ({human_size(satisfied)}, {satisfied} bytes)"
    )


def _notes(plan: Plan) -> list[str]:
    """The targets, the destination, and the options that changed what was planned."""
    lines = []
    if len(plan.targets) > 1:
        lines.append(f"targets: {', '.join(t.name for t in plan.targets)}")
    lines.append(f"destination: {plan.destination}")
    exclude_newer = plan.inputs.options.get("exclude_newer")
    if exclude_newer is not None:
        lines.append(f"files uploaded after {exclude_newer} excluded (--exclude-newer)")
    for name, cut_off in plan.inputs.options.get("exclude_newer_package", {}).items():
        lines.append(
            f"files of {name} uploaded after {cut_off} excluded (--exclude-newer-package)"
            if cut_off
            else f"no upload-time cut-off for {name} (--exclude-newer-package)"
        )
    if plan.inputs.options.get("no_deps"):
        lines.append("planned without dependencies (--no-deps)")
    statuses = dict.fromkeys(
        (a.name, a.project_status.status, a.project_status.reason)
        for a in plan.artifacts
        if a.project_status is not None
    )
    for name, status, reason in statuses:
        lines.append(f"project {name} is {status} (PEP 792)" + (f": {reason}" if reason else ""))
    if plan.inputs.overrides:
        lines.append(f"overrides: {', '.join(plan.inputs.overrides)} (--override)")
    return lines


def run(args: argparse.Namespace) -> int:
    """Validate and print the plan: its table, or with ``--graph`` its dependency graph."""
    plan, _document = load_plan(args.plan)
    sys.stdout.write(render_table(plan) if args.graph is None else render_graph(plan, args.graph))
    return 0
