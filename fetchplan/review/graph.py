"""The dependency graph of a plan as Graphviz dot or Mermaid text.

One node per project version; requested projects are highlighted, build dependencies drawn
dashed. An edge goes from a project to each version of a dependency that serves a common
target, labelled with the dependency's specifier, extras and marker as the depending project
states them. Dependencies the plan does not hold (their markers excluded them) are not drawn.
"""

from __future__ import annotations

from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement

from fetchplan.schemas.plan import Artifact, Plan

__all__ = ["GRAPH_FORMATS", "GraphFormat", "render_graph"]

GraphFormat = Literal["dot", "mermaid"]
GRAPH_FORMATS: tuple[GraphFormat, ...] = ("dot", "mermaid")


def _label(requirement: str) -> str:
    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return requirement
    label = str(req.specifier) if req.specifier else "any"
    if req.extras:
        label = "[" + ",".join(sorted(req.extras)) + "] " + label
    if req.marker is not None:
        label += f"; {req.marker}"
    return label


def _targets(artifact: Artifact, everything: frozenset[str]) -> frozenset[str]:
    return everything if artifact.targets is None else frozenset(artifact.targets)


def _model(
    plan: Plan,
) -> tuple[list[tuple[str, str, bool, bool]], list[tuple[str, str, str]]]:
    """Nodes (id, label, requested, build-only) and edges (from id, to id, label)."""
    everything = frozenset(t.name for t in plan.targets)
    nodes: dict[tuple[str, str], list[Artifact]] = {}
    for artifact in plan.artifacts:
        nodes.setdefault((artifact.name, artifact.version), []).append(artifact)
    ids = {key: f"n{i}" for i, key in enumerate(nodes)}
    served = {
        key: frozenset().union(*(_targets(a, everything) for a in members))
        for key, members in nodes.items()
    }
    node_rows = [
        (
            ids[key],
            f"{key[0]} {key[1]}",
            any(a.requested for a in members),
            all(a.build_dependency for a in members),
        )
        for key, members in nodes.items()
    ]
    edges: dict[tuple[str, str], list[str]] = {}
    for key, members in nodes.items():
        for artifact in members:
            for dep in artifact.dependencies:
                for other, other_targets in served.items():
                    if other[0] == dep.name and served[key] & other_targets:
                        labels = edges.setdefault((ids[key], ids[other]), [])
                        label = _label(dep.requirement)
                        if label not in labels:
                            labels.append(label)
    edge_rows = [(a, b, " | ".join(labels)) for (a, b), labels in edges.items()]
    return node_rows, edge_rows


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mermaid_quote(text: str) -> str:
    # Mermaid takes entity codes in quoted labels ('#' starts one, so it is escaped too) and
    # may read '<' and '>' as HTML.
    escaped = text.replace("#", "#35;").replace('"', "#quot;")
    return '"' + escaped.replace("<", "#lt;").replace(">", "#gt;") + '"'


def render_graph(plan: Plan, fmt: GraphFormat) -> str:
    """``plan``'s dependency graph in Graphviz ``dot`` or ``mermaid`` syntax (final newline).

    Pure; raises ValueError for an unknown ``fmt``.
    """
    nodes, edges = _model(plan)
    if fmt == "dot":
        lines = ["digraph plan {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
        for node_id, label, requested, build in nodes:
            attrs = [f"label={_dot_quote(label)}"]
            if requested:
                attrs.append('style="filled,bold", fillcolor="#ffe08a", penwidth=2')
            elif build:
                attrs.append("style=dashed")
            lines.append(f"  {node_id} [{', '.join(attrs)}];")
        lines.extend(f"  {a} -> {b} [label={_dot_quote(label)}];" for a, b, label in edges)
        lines.append("}")
        return "\n".join(lines) + "\n"
    if fmt == "mermaid":
        lines = ["flowchart LR"]
        for node_id, label, _, _ in nodes:
            lines.append(f"  {node_id}[{_mermaid_quote(label)}]")
        lines.extend(f"  {a} -->|{_mermaid_quote(label)}| {b}" for a, b, label in edges)
        lines.append("  classDef requested fill:#ffe08a,stroke:#b8860b,stroke-width:2px;")
        lines.append("  classDef build stroke-dasharray: 4 3;")
        highlighted = [n for n, _, r, _ in nodes if r]
        dashed = [n for n, _, r, b in nodes if b and not r]
        if highlighted:
            lines.append(f"  class {','.join(highlighted)} requested;")
        if dashed:
            lines.append(f"  class {','.join(dashed)} build;")
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown graph format {fmt!r} (use dot or mermaid)")
