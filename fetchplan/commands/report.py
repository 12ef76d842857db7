"""``fetchplan report``: draw a waterfall of a ``--timings`` file as HTML or SVG."""

from __future__ import annotations

import argparse
from pathlib import Path

from fetchplan._fs import write_output
from fetchplan.errors import FieldProblem, FileFormatError, InputError
from fetchplan.report import events_from_timings, render_html, render_svg
from fetchplan.schemas import parse_document

__all__ = ["register"]


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "report",
        parents=[common],
        help="draw a waterfall of a plan or fetch --timings file",
        description=(
            "Draw one row per connection or thread and one bar per request or file, coloured by "
            "phase (index, metadata, download, verify, install)."
        ),
    )
    parser.add_argument("timings", type=Path, help="a JSON file written by --timings")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="the chart to write: .html or .svg"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    source: Path = args.timings
    output: Path = args.output
    if output.suffix not in (".html", ".svg"):
        raise InputError(f"{output}: the output must end in .html or .svg")
    try:
        text = source.read_text("utf-8")
    except OSError as exc:
        raise FileFormatError(str(source), [FieldProblem("", f"cannot read: {exc}")]) from exc
    events = events_from_timings(parse_document(text, str(source)), str(source))
    title = f"fetchplan timings: {source.name}"
    rendered = render_svg(events, title) if output.suffix == ".svg" else render_html(events, title)
    write_output(output, rendered.encode("utf-8"))
    print(f"wrote {output} ({len(events)} events)")  # noqa: T201
    return 0
