"""``fetchplan show`` from the command line: ``--graph dot|mermaid``, and sizes written the same
way as ``audit`` and ``diff`` write them."""

from __future__ import annotations

import re
from pathlib import Path

from fetchplan._text import human_size
from tests.conftest import RunCli

PLAN = Path(__file__).parent / "data" / "policy" / "plan.json"


def test_show_graph_dot_and_mermaid(run_cli: RunCli) -> None:
    dot = run_cli("show", str(PLAN), "--graph", "dot")
    assert dot.returncode == 0, dot.stderr
    assert dot.stdout.startswith("digraph plan {\n") and dot.stdout.endswith("}\n")
    labels = dict(re.findall(r'  (n\d+) \[label="([^"]+)"', dot.stdout))
    assert set(labels.values()) == {
        "app 1.0",
        "lib 2.0",
        "big 3.0",
        "nohash 0.1",
        "setuptools 80.0",
    }
    node = {label: n for n, label in labels.items()}
    assert f'  {node["app 1.0"]} -> {node["lib 2.0"]} [label=">=2"];' in dot.stdout
    assert "NAME" not in dot.stdout and "artifacts:" not in dot.stdout  # no table

    mermaid = run_cli("show", str(PLAN), "--graph", "mermaid")
    assert mermaid.returncode == 0, mermaid.stderr
    assert mermaid.stdout.splitlines()[0] == "flowchart LR"
    assert re.search(r"^  class n\d+ requested;$", mermaid.stdout, flags=re.M)

    table = run_cli("show", str(PLAN))
    assert table.returncode == 0 and table.stdout.split()[:5] == [
        "NAME",
        "VERSION",
        "SIZE",
        "HOST",
        "STATUS",
    ]

    bad = run_cli("show", str(PLAN), "--graph", "svg")
    assert bad.returncode == 2 and "invalid choice: 'svg'" in bad.stderr and not bad.stdout


def test_show_audit_and_diff_write_sizes_alike(run_cli: RunCli, tmp_path: Path) -> None:
    show = run_cli("show", str(PLAN))
    audit = run_cli("audit", str(PLAN))
    assert show.returncode == 0 and audit.returncode == 0, (show.stderr, audit.stderr)
    # lib's sdist is 500000 bytes: show's row and audit's host table both say 500.0 kB;
    # the mirror host serves it with a 40000-byte wheel: 540.0 kB.
    assert re.search(r"^lib +2\.0 +500\.0 kB ", show.stdout, flags=re.M), show.stdout
    assert re.search(r"mirror\.example\.net:8080 .* 540\.0 kB ", audit.stdout), audit.stdout
    assert "KiB" not in audit.stdout + show.stdout and "MiB" not in audit.stdout
    assert (human_size(2900), human_size(999), human_size(1_500_000)) == (
        "2.9 kB",
        "999 B",
        "1.5 MB",
    )
