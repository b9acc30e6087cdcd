"""Imports say what depends on what (issue 23, item 3): the import graph of the six packages
(inspect_core, inspect_plugins, inspect_db, inspect_stations, inspect_review, inspect_batch),
read statically from the source, has no cycle.

A module's imports at module level (``if``/``try`` blocks included) are what runs when it
loads: those are the graph the cycle test reads. Imports under ``if TYPE_CHECKING:`` never run
and are left out; imports inside functions run later, so a cycle through one does not fail a
load, but it still ties two modules together: :func:`function_level_cycles` reads them, and a
cycle there fails too. ``import a.b`` and ``from a.b import c`` point at ``a.b`` (at ``a.b.c``
when that is a module), not at the packages above it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# each package's import name -> the folder that holds it
PACKAGES = {
    "inspect_core": ROOT / "inspect_core",
    "inspect_plugins": ROOT / "plugins" / "inspect_plugins",
    "inspect_db": ROOT / "db" / "inspect_db",
    "inspect_stations": ROOT / "stations" / "inspect_stations",
    "inspect_review": ROOT / "review" / "inspect_review",
    "inspect_batch": ROOT / "batch" / "inspect_batch",
}

# cycles allowed for now, each the set of its modules -> why (one line); keep it empty
KNOWN_CYCLES: dict[frozenset[str], str] = {}


@dataclass
class Graph:
    """Module -> the modules it imports, at module level and inside functions."""

    modules: dict[str, Path] = field(default_factory=dict)
    top: dict[str, set[str]] = field(default_factory=dict)
    inner: dict[str, set[str]] = field(default_factory=dict)


def module_name(package: str, folder: Path, path: Path) -> str:
    parts = [package, *path.relative_to(folder).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def build_graph() -> Graph:
    g = Graph()
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            g.modules[module_name(package, folder, path)] = path
    for name, path in g.modules.items():
        is_package = path.name == "__init__.py"
        top, inner = set(), set()
        for node, in_function in _imports(ast.parse(path.read_text(), str(path))):
            for target in _targets(node, name, is_package, g.modules):
                if target != name:
                    (inner if in_function else top).add(target)
        g.top[name], g.inner[name] = top, inner
    return g


def _imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement, and whether it sits inside a function; none under
    ``if TYPE_CHECKING:``."""

    def walk(
        node: ast.AST, in_function: bool
    ) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, in_function
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                yield from walk_list(child.orelse, in_function)
            else:
                inside = in_function or isinstance(
                    child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
                )
                yield from walk(child, inside)

    def walk_list(nodes: list[ast.stmt], in_function: bool):
        for n in nodes:
            yield from walk(ast.Module(body=[n], type_ignores=[]), in_function)

    return walk(tree, False)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: dict[str, Path]
) -> list[str]:
    """The modules of the six packages that ``node`` (in ``module``) imports."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in known]
    base = node.module or ""
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        here = here[: len(here) - (node.level - 1)]
        base = ".".join(here + ([base] if base else []))
    out = []
    for a in node.names:
        sub = f"{base}.{a.name}"
        if sub in known:
            out.append(sub)
        elif base in known:
            out.append(base)
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path back to its start) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan, iterative over each node's edges
        work = [(v, iter(sorted(edges.get(v, ()))))]
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        group.add(w)
                        if w == node:
                            break
                    if len(group) > 1:
                        groups.append(group)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [_path_in(group, edges) for group in groups]


def _path_in(group: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the first module of ``group`` (breadth first)."""
    start = min(group)
    came: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, set()) & group):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w not in came:
                    came[w] = v
                    nxt.append(w)
        frontier = nxt
    return [start]


def function_level_cycles(g: Graph) -> list[list[str]]:
    """Cycles that appear once the imports inside functions count too."""
    both = {m: g.top[m] | g.inner[m] for m in g.modules}
    plain = {frozenset(c) for c in cycles(g.top)}
    return [c for c in cycles(both) if frozenset(c) not in plain]


def test_the_graph_sees_every_package():
    g = build_graph()
    for package in PACKAGES:
        assert package in g.modules, f"{PACKAGES[package]} has no __init__.py"
    assert "inspect_core.runtime.onnx_model" in g.top["inspect_core.runtime.inspector"]


def test_no_import_cycle_at_module_level():
    g = build_graph()
    found = [c for c in cycles(g.top) if frozenset(c) not in KNOWN_CYCLES]
    assert not found, "import cycles (module-level imports):\n" + "\n".join(
        " -> ".join(c) for c in found
    )


def test_known_cycles_are_still_there():
    """An exception that no longer happens is taken off :data:`KNOWN_CYCLES`."""
    found = {frozenset(c) for c in cycles(build_graph().top)}
    gone = [sorted(k) for k in KNOWN_CYCLES if not any(k <= f for f in found)]
    assert not gone, f"these cycles are gone, remove them from KNOWN_CYCLES: {gone}"


def test_no_import_cycle_through_imports_inside_functions():
    """Not one cycle either once the imports inside functions count: a function's import does
    not fail a load, but it still makes two modules depend on each other."""
    found = function_level_cycles(build_graph())
    assert not found, "import cycles through imports inside functions:\n" + "\n".join(
        " -> ".join(c) for c in found
    )


def test_cycles_are_found_and_named():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
