"""The package's import graph has no cycles: every module stands above what it imports.

The graph is read from the source with `ast`, so nothing is imported to draw it. An edge is any
`import` a module runs, at module level or inside a function (an import moved into a function
still ties the two modules together; hiding it there is how cycles survive). Imports under
`if TYPE_CHECKING:` are not edges: they never run, and they are how a lower module names a
type of a higher one in its annotations. Importing `a.b.c` from outside package `a.b` also
runs `a/b/__init__.py`, so that is an edge too: a package's `__init__` that imports its own
modules is where a hidden cycle most often closes.

To see the graph: `python tests/test_layers.py` prints every edge, and any cycle.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "mwe"


def modules(src: Path = SRC) -> dict[str, Path]:
    """Dotted name → file, for every module and package of the `mwe` tree."""
    found = {}
    for path in sorted((src / ROOT).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: all of them except those under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        else:
            yield from _imports(node)


def _with_packages(target: str, importer: str, known: dict[str, Path]) -> set[str]:
    """`target` and each package above it that importing it from `importer` runs: those that
    `importer` is not itself inside (its own packages are already running)."""
    names = set()
    parts = target.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        inside = importer == name or importer.startswith(name + ".")
        if name in known and not inside:
            names.add(name)
    if target in known:
        names.add(target)  # an explicit import of a package (or the root) is an edge to it
    return names


def import_graph(src: Path = SRC) -> dict[str, dict[str, int]]:
    """module → {imported module: line of the first import}, for imports inside the package."""
    known = modules(src)
    graph: dict[str, dict[str, int]] = {name: {} for name in known}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join([*base, node.module] if node.module else base)
                else:
                    module = node.module or ""
                for alias in node.names:  # `from pkg import mod` imports the module pkg.mod
                    sub = f"{module}.{alias.name}"
                    targets.append(sub if sub in known else module)
            for target in targets:
                if target != ROOT and not target.startswith(ROOT + "."):
                    continue
                while target not in known:  # `import mwe.x.y` where y is a name, not a module
                    target = target.rpartition(".")[0]
                for edge in _with_packages(target, name, known) - {name}:
                    graph[name].setdefault(edge, node.lineno)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def describe(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    edges = [f"  {a} -> {b} (line {graph[a][b]})" for a in cycle for b in sorted(graph[a]) if b in cycle]
    return "cycle: " + ", ".join(cycle) + "\n" + "\n".join(edges)


def test_the_graph_sees_imports_of_every_kind(tmp_path: Path) -> None:
    """The reader itself: function-level imports and package `__init__`s are edges, TYPE_CHECKING
    ones are not, so the next test cannot pass by missing an edge."""
    pkg = tmp_path / ROOT
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "def f():\n    from .sub.c import x\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\nelse:\n    import json\n",
        "sub/__init__.py": "from . import c\n",
        "sub/c.py": "from .. import b\nfrom ..a import f\n",
    }
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    graph = import_graph(tmp_path)
    assert graph["mwe.a"] == {"mwe.sub": 2, "mwe.sub.c": 2}
    assert graph["mwe.b"] == {}
    assert graph["mwe.sub"] == {"mwe.sub.c": 1}
    assert graph["mwe.sub.c"] == {"mwe.b": 1, "mwe.a": 2}
    assert cycles(graph) == [["mwe.a", "mwe.sub", "mwe.sub.c"]]


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 40  # the whole package was read
    found = cycles(graph)
    assert not found, "\n".join(describe(c, graph) for c in found)


def test_nothing_imports_the_package_root() -> None:
    """`mwe/__init__.py` is the public front and loads its names lazily (by name, which the graph
    does not see), so a module importing from it would close a cycle through any of them."""
    graph = import_graph()
    assert not [name for name, edges in graph.items() if ROOT in edges]


MAX_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    """Small modules, one job each: a module past this is doing two things a reader could name."""
    long = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"


if __name__ == "__main__":
    g = import_graph()
    for module in sorted(g):
        for imported, line in sorted(g[module].items()):
            print(f"{module} -> {imported} (line {line})")
    for c in cycles(g):
        print(describe(c, g))
