"""The package's layers, stated as data, and checked by an import scan of ``fetchplan/``.

From the top::

    cli (fetchplan, fetchplan.cli, __main__) -> commands -> pipeline
        -> planner | executor | install (and the other stages below) -> schemas -> leaves

A module may import its own component and any layer below its own, never one above. Among
the stages only the imports of :data:`STAGE_IMPORTS` are allowed: the formats read plans the
planner makes, the planner prepares sdists' metadata with the builds, a build environment is
filled by the installer, a bundle is fetched by the executor. So the executor imports
neither the planner nor the installer, the planner not the installer, and the installer
nothing of another stage (it knows no builds).

Every ``import`` counts: at module level, inside a function (run time, when it runs), and
under ``if TYPE_CHECKING:`` (type-only). Importing ``a.b.c`` runs ``a`` and ``a.b`` too;
a module's own packages are imported before it, so an import of one of them is no edge.

Circles: none at run time (module level and function level together), and none among
type-only imports either, but for those listed in :data:`KNOWN_CIRCLES`, each with the
branch expected to remove it: a circle that shrinks passes, one that grows or a new one
fails. (The planner's api <-> planning circle went with the settings redesign; none is
left at run time.) Dynamic imports (``importlib.import_module`` of a computed name, as the lazy
``__getattr__`` of ``fetchplan`` and ``fetchplan.bundle`` do) are not seen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fetchplan"

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"cli"}),
    frozenset({"commands"}),
    frozenset({"pipeline"}),
    frozenset({"planner", "executor", "install", "build", "bundle", "formats", "review", "report"}),
    frozenset({"schemas"}),
    frozenset({"leaves"}),
)
"""Components, top layer first. ``leaves`` is every module of ``fetchplan/`` that belongs to
no other component (``errors``, ``_fs``, ``cache``, ``auth``, ``wheels``...)."""

STAGE_IMPORTS: Mapping[str, frozenset[str]] = {
    "formats": frozenset({"planner"}),
    "planner": frozenset({"build"}),
    "build": frozenset({"install"}),
    "bundle": frozenset({"executor"}),
}
"""The stages a stage may import (none where not listed)."""

KNOWN_CIRCLES: tuple[tuple[frozenset[str], str], ...] = ()


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    line: int
    type_only: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """The ids of every node inside an ``if TYPE_CHECKING:`` body."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                inside.update(id(child) for child in ast.walk(statement))
    return inside


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    """The dotted names ``node`` may import (a name imported from a package may be a
    submodule: the caller keeps only the names that are modules)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, *([node.module] if node.module else [])])
    yield base
    yield from (f"{base}.{alias.name}" for alias in node.names)


def _edges(modules: Mapping[str, Path]) -> list[Edge]:
    edges: list[Edge] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        type_only = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets: set[str] = set()
            for name in _imported(node, module, path.name == "__init__.py"):
                parts = name.split(".")
                # Importing a.b.c runs a and a.b first.
                targets.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
            for target in sorted(targets):
                if target not in modules or target == module:
                    continue
                if module.startswith(f"{target}."):
                    continue  # one of its own packages: imported before it anyway
                edges.append(Edge(module, target, node.lineno, id(node) in type_only))
    return edges


def _component(module: str) -> str:
    if module in ("fetchplan", "fetchplan.__main__", "fetchplan.cli"):
        return "cli"
    part = module.split(".")[1]
    if any(part in layer for layer in LAYERS):
        return part
    return "leaves"


def _layer(component: str) -> int:
    """0 for the top layer."""
    return next(i for i, layer in enumerate(LAYERS) if component in layer)


def _violation(edge: Edge) -> str | None:
    source, target = _component(edge.source), _component(edge.target)
    if source == target:
        return None
    above = _layer(target) < _layer(source)
    same_layer = _layer(target) == _layer(source)
    if above or (same_layer and target not in STAGE_IMPORTS.get(source, frozenset())):
        kind = "type-only import" if edge.type_only else "import"
        return (
            f"{edge.source} (line {edge.line}, {source}) -> {edge.target} ({target}): "
            f"{kind} {'of a layer above' if above else 'of another stage'}"
        )
    return None


def _reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for successor in graph[todo.pop()]:
            if successor not in seen:
                seen.add(successor)
                todo.append(successor)
    return seen


def _circles(edges: list[Edge], modules: Mapping[str, Path]) -> list[frozenset[str]]:
    """The groups of modules that reach each other through ``edges`` (each module on a
    circle, with every other module on a circle through it)."""
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for edge in edges:
        graph[edge.source].add(edge.target)
    reach = {module: _reachable(graph, module) for module in graph}
    circles = {
        frozenset({module} | {other for other in reach[module] if module in reach[other]})
        for module in graph
        if module in reach[module]
    }
    return sorted(circles, key=sorted)


@pytest.fixture(scope="module")
def scan() -> tuple[dict[str, Path], list[Edge]]:
    modules = _modules()
    return modules, _edges(modules)


def test_every_import_goes_down_the_layers(scan: tuple[dict[str, Path], list[Edge]]) -> None:
    _, edges = scan
    violations = sorted({v for edge in edges if (v := _violation(edge)) is not None})
    assert violations == []


def _unexpected(circles: list[frozenset[str]], kinds: set[str]) -> list[list[str]]:
    """The circles no known circle of ``kinds`` holds."""
    allowed = [members for members, kind in KNOWN_CIRCLES if kind in kinds]
    return [sorted(c) for c in circles if not any(c <= members for members in allowed)]


def test_no_import_circle_at_run_time(scan: tuple[dict[str, Path], list[Edge]]) -> None:
    modules, edges = scan
    runtime = [edge for edge in edges if not edge.type_only]
    assert _unexpected(_circles(runtime, modules), {"runtime"}) == []


def test_no_import_circle_with_type_only_imports(
    scan: tuple[dict[str, Path], list[Edge]],
) -> None:
    modules, edges = scan
    assert _unexpected(_circles(edges, modules), {"runtime", "type-only"}) == []


def test_the_scan_sees_what_it_checks(scan: tuple[dict[str, Path], list[Edge]]) -> None:
    """The rules hold because the scan finds the imports, not because it finds none."""
    modules, edges = scan
    seen = {(edge.source, edge.target, edge.type_only) for edge in edges}
    # A module-level, a function-level and a type-only import the package is known to have.
    assert ("fetchplan.build.env", "fetchplan.install", False) in seen
    assert ("fetchplan.commands.run", "fetchplan.pipeline", False) in seen
    assert ("fetchplan", "fetchplan.pipeline", True) in seen
    upward = Edge("fetchplan.install.core", "fetchplan.build.sdists", 1, False)
    assert _violation(upward) is not None
    assert _violation(Edge("fetchplan.executor.run", "fetchplan.planner.api", 1, True))
    assert _violation(Edge("fetchplan.schemas.plan", "fetchplan.pipeline", 1, False))
    circle = [
        Edge("fetchplan.a", "fetchplan.b", 1, False),
        Edge("fetchplan.b", "fetchplan.a", 1, False),
    ]
    assert _circles(circle, {"fetchplan.a": Path(), "fetchplan.b": Path()}) == [
        frozenset({"fetchplan.a", "fetchplan.b"})
    ]
    assert len(modules) > 100
