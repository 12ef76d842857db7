"""``fetchplan report`` draws every event of a timings file, and names a bad record."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from xml.etree import ElementTree

from fetchplan.report import Event, render_svg

_SVG = "{http://www.w3.org/2000/svg}"


def test_svg_has_a_bar_per_event_on_its_lane() -> None:
    events = [
        Event(start=0.0, end=0.5, lane="t1", phase="index", label="a"),
        Event(start=0.5, end=2.0, lane="t2", phase="download", label="b", bytes=10),
        Event(start=1.0, end=1.5, lane="t1", phase="metadata", label="c"),
    ]
    root = ElementTree.fromstring(render_svg(events))
    rects = root.findall(f"{_SVG}rect")
    assert len(rects) == 3
    ys = {r.find(f"{_SVG}title").text.split(":")[0]: r.get("y") for r in rects}  # type: ignore[union-attr]
    assert ys["index"] == ys["metadata"] != ys["download"]
    # The longest bar spans 1.5 of 2.0 seconds of a 900-pixel chart.
    widths = sorted(float(r.get("width", "0")) for r in rects)
    assert widths[-1] == 675.0


def test_cli_html_and_bad_record(
    tmp_path: Path, cli_env: dict[str, str], fetchplan_cmd: list[str]
) -> None:
    timings = tmp_path / "t.json"
    timings.write_text(
        json.dumps({"events": [{"start": 0, "end": 1, "lane": "w0", "phase": "download"}]})
    )
    out = tmp_path / "run.html"
    done = subprocess.run(
        [*fetchplan_cmd, "report", str(timings), "-o", str(out)],
        env=cli_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "<svg" in out.read_text() and "download" in out.read_text()
    timings.write_text(json.dumps({"events": [{"start": "soon"}]}))
    bad = subprocess.run(
        [*fetchplan_cmd, "report", str(timings), "-o", str(out)],
        env=cli_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith(f"fetchplan: error: {timings}: events[0]: bad event")
