"""``fetchplan show PLAN``: a plan as a table a person can read, with totals.

One row per artifact (name, version, size, host, status) and totals: artifacts, bytes to
download, bytes already satisfied by the destination or the cache. The plan is validated when
read, so a bad plan is rejected with its file and the dotted path of the bad field.
:func:`render_table` is pure; other renderings (a dependency graph) can sit beside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fetchplan.schemas.plan import Artifact, Plan, load_plan

__all__ = ["register", "render_table", "run", "status_of"]

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
    p.set_defaults(func=run)


def human_size(size: int | None) -> str:
    """``1.2 MB`` style (decimal units), ``?`` when unknown."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover - the loop always returns


def status_of(artifact: Artifact) -> str:
    """``fetch``, ``in destination`` or ``in cache``, flagged when it has no hash or is yanked."""
    if artifact.satisfied_by is None:
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
    if artifact.kind == "sdist":
        notes.append("sdist")
    return f"{status} ({', '.join(notes)})" if notes else status


def _host(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return "local"
    return parts.netloc


def render_table(plan: Plan) -> str:
    """The table and totals for ``plan``, as text ending in a newline."""
    rows = [
        (a.name, a.version, human_size(a.size), _host(a.url), status_of(a)) for a in plan.artifacts
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(_HEADERS)]
    lines = []
    for row in (_HEADERS, *rows):
        cells = [
            cell.rjust(widths[i]) if i == 2 else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    pending = [a for a in plan.artifacts if a.satisfied_by is None]
    done = [a for a in plan.artifacts if a.satisfied_by is not None]
    to_fetch = sum(a.size or 0 for a in pending)
    satisfied = sum(a.size or 0 for a in done)
    unknown = sum(1 for a in pending if a.size is None)
    lines.append("")
    lines.append(
        f"{len(plan.artifacts)} artifacts: {len(pending)} to download "
        f"({human_size(to_fetch)}, {to_fetch} bytes"
        + (f", {unknown} of unknown size" if unknown else "")
        + f"), {len(done)} already satisfied ({human_size(satisfied)}, {satisfied} bytes)"
    )
    lines.append(f"destination: {plan.destination}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Validate and print the plan."""
    plan, _document = load_plan(args.plan)
    sys.stdout.write(render_table(plan))
    return 0
