"""No module of ``include/headroom`` imports another in a cycle (module-level imports, read statically with ``ast``).

Imports under ``if TYPE_CHECKING:`` do not run and are left out; imports inside functions run late and are
allowed to close a loop (they are how a module reaches back without a cycle at import time).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import PROJECT_ROOT

PACKAGE = "include.headroom"


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def module_level_imports(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Modules imported when ``module`` is imported: top-level statements, ``try``/``if`` bodies, not TYPE_CHECKING."""
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)  # kept only when it names a module
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, (ast.With,)):
                visit(node.body)

    visit(tree.body)
    return found


def import_graph(root: Path = PROJECT_ROOT / "include" / "headroom") -> dict[str, set[str]]:
    files = {module_name(p): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        imported = module_level_imports(ast.parse(path.read_text(), filename=str(path)), name, path.name == "__init__.py")
        graph[name] = {m for m in imported if m in files and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_graph_is_read():
    graph = import_graph()
    assert len(graph) > 50
    assert "include.headroom.exceptions" in graph["include.headroom.resilience"]
    assert "include.headroom.configfile" in graph["include.headroom.config"]
    assert not any(m.startswith("airflow") for deps in graph.values() for m in deps)


def test_no_module_imports_another_in_a_cycle():
    found = cycles(import_graph())
    assert found == [], "import cycles in include/headroom (module-level imports):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_a_cycle_is_found(tmp_path):
    """The check can fail: two modules importing each other, one through a relative import, are reported."""
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}
    assert cycles(graph) == [["p.a", "p.b", "p.c"]]
    tree = ast.parse("from __future__ import annotations\nfrom typing import TYPE_CHECKING\nfrom . import b\n"
                     "if TYPE_CHECKING:\n    from .c import X\ndef f():\n    from .d import Y\n")
    assert module_level_imports(tree, "p.a", is_package=False) >= {"p", "p.b"}
    assert not {"p.c", "p.c.X", "p.d"} & module_level_imports(tree, "p.a", is_package=False)
