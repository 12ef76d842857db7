"""``render_graph``: the dependency graph as Graphviz dot and Mermaid text."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fetchplan.review.graph import render_graph
from fetchplan.schemas.plan import load_plan

PLAN = load_plan(Path(__file__).parent / "data" / "policy" / "plan.json")[0]


def test_dot() -> None:
    text = render_graph(PLAN, "dot")
    ids = dict(re.findall(r'  (n\d+) \[label="([^"]+)"', text))
    by_label = {label: node for node, label in ids.items()}
    assert set(by_label) == {"app 1.0", "lib 2.0", "big 3.0", "nohash 0.1", "setuptools 80.0"}
    app = by_label["app 1.0"]
    assert re.search(rf"  {app} \[[^\]]*style=\"filled,bold\"", text)  # requested: highlighted
    assert re.search(rf"  {by_label['setuptools 80.0']} \[[^\]]*style=dashed", text)
    assert f'  {app} -> {by_label["lib 2.0"]} [label=">=2"];' in text
    # Extras and marker in the label; quotes escaped for dot.
    assert (
        f'  {app} -> {by_label["big 3.0"]} [label="[gpu] ~=3.0; python_version >= \\"3.10\\""];'
        in text
    )
    assert f'  {app} -> {by_label["nohash 0.1"]} [label="any"];' in text
    assert text.count("->") == 3
    if shutil.which("dot") is not None:
        subprocess.run(["dot", "-Tsvg"], input=text, text=True, check=True, capture_output=True)


def test_mermaid() -> None:
    text = render_graph(PLAN, "mermaid")
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    nodes = dict(re.findall(r'^  (n\d+)\["([^"]+)"\]$', text, flags=re.M))
    by_label = {label: node for node, label in nodes.items()}
    assert f"  class {by_label['app 1.0']} requested;" in lines
    assert f"  class {by_label['setuptools 80.0']} build;" in lines
    assert f'  {by_label["app 1.0"]} -->|"#gt;=2"| {by_label["lib 2.0"]}' in lines
    edge = f'  {by_label["app 1.0"]} -->|"[gpu] ~=3.0; python_version #gt;= #quot;3.10#quot;"| '
    assert edge + by_label["big 3.0"] in lines


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown graph format 'svg'"):
        render_graph(PLAN, "svg")  # type: ignore[arg-type]
