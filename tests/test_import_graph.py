"""No import circle between obliviate's subpackages.

The graph is read with ``ast`` from every ``import`` statement under ``src/obliviate``, the ones inside
functions included (a lazy import still makes the two packages depend on each other). A node is a
subpackage (``training``, ``certified``...) or a top-level module (``storage``, ``results``...); the
package root ``obliviate`` itself (the public API that assembles everything) is left out.

``KNOWN`` lists the edges that still close a circle, each with the file that holds it and the change
that removes it. The test fails when a new circle appears and also when a listed edge is gone, so the
list only shrinks.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import obliviate

ROOT = Path(obliviate.__file__).parent

# (importing module, imported subpackage): why it is still there.
KNOWN: dict[tuple[str, str], str] = {
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _node(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "obliviate" or len(parts) == 1:
        return None
    return parts[1]


def _imports(path: Path, module: str) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # ``from obliviate import certified`` imports the subpackage ``certified``
            if target == "obliviate":
                found.update(f"obliviate.{alias.name}" for alias in node.names)
    return found


def import_edges() -> dict[tuple[str, str], set[str]]:
    """(importing module, imported node) -> the importing module's node, for every cross-node import."""
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        source = _node(module)
        if source is None:
            continue
        for target in _imports(path, module):
            dest = _node(target)
            if dest is not None and dest != source:
                edges[(module, dest)].add(source)
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _graph(edges: dict[tuple[str, str], set[str]], *, skip: set[tuple[str, str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for (module, dest), sources in edges.items():
        if (module, dest) not in skip:
            for source in sources:
                graph[source].add(dest)
    return graph


def _explain(edges: dict[tuple[str, str], set[str]], component: list[str]) -> str:
    inside = set(component)
    lines = [
        f"  {module} -> {dest}"
        for (module, dest), sources in sorted(edges.items())
        if dest in inside and sources & inside
    ]
    return f"circle between {component}:\n" + "\n".join(lines)


def test_no_import_circle_between_subpackages():
    edges = import_edges()
    cycles = _cycles(_graph(edges, skip=set(KNOWN)))
    assert not cycles, "\n".join(_explain(edges, c) for c in cycles)


def test_known_edges_still_exist():
    """A listed edge that is gone must leave the list (so it cannot come back unnoticed)."""
    gone = sorted(set(KNOWN) - set(import_edges()))
    assert not gone, f"remove these from KNOWN, they no longer exist: {gone}"


def test_training_does_not_import_certified_and_report_bench_do_not_import_each_other():
    """The two circles issue 12 names: the trainer registers certified's solvers; one module owns the results."""
    edges = import_edges()
    graph = _graph(edges, skip=set())
    assert "certified" not in graph["training"]
    assert not ("report" in graph["bench"] and "bench" in graph["report"])
    assert "report" not in graph["bench"]


def test_the_detector_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
