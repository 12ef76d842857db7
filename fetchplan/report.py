"""Waterfall charts of where a plan or fetch spent its time.

The input is the ``events`` list that ``plan --timings`` and ``fetch --timings`` write: one
record per request or file with ``start``/``end`` in seconds from the run's start, a ``lane``
(the thread or connection that did it), a ``phase`` and a ``label``. Rendering is pure: events
in, SVG text out; the HTML form wraps the SVG with a legend and totals.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fetchplan.errors import FieldProblem, FileFormatError
from fetchplan.schemas import wrong_kind

__all__ = ["PHASE_COLOURS", "Event", "events_from_timings", "render_html", "render_svg"]

PHASE_COLOURS: Mapping[str, str] = {
    "index": "#4e79a7",
    "metadata": "#f28e2b",
    "resolve": "#bab0ac",
    "download": "#59a14f",
    "verify": "#edc948",
    "install": "#b07aa1",
    "other": "#9c755f",
}

_ROW = 16
_LABEL_WIDTH = 150
_CHART_WIDTH = 900
_TOP = 30


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    start: float
    end: float
    lane: str
    phase: str
    label: str
    bytes: int = 0


def events_from_timings(document: Any, filename: str) -> list[Event]:
    """The events of a ``plan --timings`` or ``fetch --timings`` document.

    A plan's timings list its requests as ``events``; a fetch's list ``artifacts``, each with
    its ``phases`` (download, verify) and the worker that handled it, which become one event
    per phase. A bad record is named by its field path.
    """
    other = wrong_kind(document, "plan-timings", accepted=("fetch-timings",))
    if other is not None:
        raise FileFormatError(filename, [other])
    if isinstance(document, dict) and isinstance(document.get("artifacts"), list):
        return _fetch_events(document["artifacts"], filename)
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise FileFormatError(filename, [FieldProblem("events", "missing: not a timings file")])
    events: list[Event] = []
    problems: list[FieldProblem] = []
    for i, raw in enumerate(document["events"]):
        try:
            start = float(raw["start"])
            end = float(raw["end"])
            events.append(
                Event(
                    start=start,
                    end=max(end, start),
                    lane=str(raw.get("lane", "main")),
                    phase=str(raw.get("phase", "other")),
                    label=str(raw.get("label", "")),
                    bytes=int(raw.get("bytes", 0) or 0),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(FieldProblem(f"events[{i}]", f"bad event: {exc}"))
    if problems:
        raise FileFormatError(filename, problems)
    return events


def _fetch_events(artifacts: list[Any], filename: str) -> list[Event]:
    events: list[Event] = []
    problems: list[FieldProblem] = []
    for i, raw in enumerate(artifacts):
        try:
            label = str(raw["destination"])
            lane = str(raw.get("worker") or "main")
            phases = raw.get("phases") or []
            if not phases:
                phases = [{"name": "other", "start": raw["start"], "end": raw["end"]}]
            for phase in phases:
                start = float(phase["start"])
                end = max(float(phase["end"]), start)
                size = int(raw.get("network_bytes", 0) or 0) if phase["name"] == "download" else 0
                events.append(
                    Event(
                        start=start,
                        end=end,
                        lane=lane,
                        phase=str(phase["name"]),
                        label=f"{label} ({raw.get('source')})",
                        bytes=size,
                    )
                )
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(FieldProblem(f"artifacts[{i}]", f"bad artifact: {exc}"))
    if problems:
        raise FileFormatError(filename, problems)
    return events


def _lanes(events: Iterable[Event]) -> list[str]:
    first: dict[str, float] = {}
    for event in events:
        first[event.lane] = min(first.get(event.lane, event.start), event.start)
    return sorted(first, key=lambda lane: (first[lane], lane))


def render_svg(events: Sequence[Event], title: str = "fetchplan timings") -> str:
    """An SVG waterfall: one row per lane, one bar per event, coloured by phase."""
    lanes = _lanes(events)
    span = max((e.end for e in events), default=0.0) or 1.0
    height = _TOP + _ROW * max(len(lanes), 1) + 30
    width = _LABEL_WIDTH + _CHART_WIDTH + 20
    scale = _CHART_WIDTH / span
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<text x="4" y="16" font-size="13">{html.escape(title)} ({span:.2f} s)</text>',
    ]
    for row, lane in enumerate(lanes):
        y = _TOP + row * _ROW
        out.append(f'<text x="4" y="{y + 11}">{html.escape(lane[:24])}</text>')
    row_of = {lane: i for i, lane in enumerate(lanes)}
    for event in sorted(events, key=lambda e: (e.start, e.end)):
        y = _TOP + row_of[event.lane] * _ROW + 2
        x = _LABEL_WIDTH + event.start * scale
        w = max((event.end - event.start) * scale, 1.0)
        colour = PHASE_COLOURS.get(event.phase, PHASE_COLOURS["other"])
        tip = f"{event.phase}: {event.label} {event.end - event.start:.3f} s"
        if event.bytes:
            tip += f", {event.bytes} bytes"
        out.append(
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{_ROW - 4}" fill="{colour}">'
            f"<title>{html.escape(tip)}</title></rect>"
        )
    axis_y = _TOP + _ROW * max(len(lanes), 1) + 14
    for tick in range(11):
        x = _LABEL_WIDTH + tick * _CHART_WIDTH / 10
        out.append(f'<text x="{x:.0f}" y="{axis_y}">{span * tick / 10:.2f}s</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render_html(events: Sequence[Event], title: str = "fetchplan timings") -> str:
    """A standalone page: the SVG waterfall, a colour legend and totals per phase."""
    totals: dict[str, tuple[int, float, int]] = {}
    for event in events:
        count, seconds, size = totals.get(event.phase, (0, 0.0, 0))
        totals[event.phase] = (count + 1, seconds + event.end - event.start, size + event.bytes)
    legend = "".join(
        f'<span style="background:{colour};padding:0 8px;margin-right:4px">&nbsp;</span>'
        f"{html.escape(phase)} "
        for phase, colour in PHASE_COLOURS.items()
        if phase in totals
    )
    rows = "".join(
        f"<tr><td>{html.escape(phase)}</td><td>{count}</td><td>{seconds:.3f}</td>"
        f"<td>{size}</td></tr>"
        for phase, (count, seconds, size) in sorted(totals.items())
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "</head><body>"
        f"<h1>{html.escape(title)}</h1><p>{legend}</p>{render_svg(events, title)}"
        "<table border='1' cellpadding='3'><tr><th>phase</th><th>events</th>"
        f"<th>busy seconds</th><th>bytes</th></tr>{rows}</table></body></html>\n"
    )
