"""Dependencies point one way: states <- connectors <- flows; the domain does no I/O; no module imports
itself back through others (no import cycle) and none grows past 450 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# I/O libraries and the outer layers: none of these may appear in states/.
FORBIDDEN_IN_STATES = {"sqlalchemy", "prefect", "smtplib", "imaplib", "httpx", "requests", "caldav", "icalendar",
                       "fastapi", "socket", "psycopg", "psycopg2", "aiosmtpd", "alembic", "urllib", "http",
                       "connectors", "flows"}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) for every import in ``path``, including ones inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value.split(".")[0]))
    return found


def _files(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    return files


def violations(package: str, forbidden: set[str]) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} imports {module}"
            for path in _files(package) for line, module in imported_modules(path) if module in forbidden]


def test_states_imports_no_io_and_no_outer_layer() -> None:
    assert violations("states", FORBIDDEN_IN_STATES) == []


def test_connectors_do_not_import_flows() -> None:
    assert violations("connectors", {"flows"}) == []


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import os\nimport sqlalchemy.orm as orm\nfrom http import client\n"
                     "def f():\n    from connectors.db import store\n    importlib.import_module('prefect')\n")
    assert [m for _, m in imported_modules(probe)] == ["os", "sqlalchemy", "http", "connectors", "prefect"]


@pytest.mark.parametrize("module", ["states", "states.request", "states.lifecycle", "states.guards"])
def test_importing_the_domain_pulls_in_no_database_or_orchestrator(module: str) -> None:
    code = (f"import sys, {module}, states.request, states.validation, states.diagnosis\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'sqlalchemy', 'prefect', 'psycopg', 'alembic', 'smtplib', 'imaplib', 'httpx', 'caldav'})\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


# --- the module graph: no import cycle, no oversized module -------------------------------------------

PROJECT = ("states", "connectors", "flows")
MAX_MODULE_LINES = 450


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``path:line`` (a project module each)."""

    source: str
    target: str
    path: str
    line: int


def module_files(root: Path, packages: tuple[str, ...] = PROJECT) -> dict[str, Path]:
    """Dotted module name -> file for every module of ``packages`` under ``root`` (migrations excluded)."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if "migrations" in parts:
                continue
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node that runs at some point (module level or inside a function), skipping the bodies of
    ``if TYPE_CHECKING:`` (their ``else`` branches run)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(reversed(node.orelse))
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _imported_names(node: ast.AST, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for one import statement or import_module() call."""
    if isinstance(node, ast.Import):
        return [(alias.name, []) for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            base = package[:len(package) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        return [(target, [alias.name for alias in node.names])]
    if (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", ""))
            in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)):
        return [(node.args[0].value, [])]
    return []


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The deepest project module ``name`` names (``a.b.func`` -> ``a.b``), or None outside the project."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def import_graph(root: Path, packages: tuple[str, ...] = PROJECT) -> list[Edge]:
    """Every import between project modules, lazy ones inside functions included.

    ``from pkg import sub`` is an edge to ``pkg.sub`` when ``sub`` is a module, else to ``pkg``. The
    implicit import of a module's parent packages is not an edge, so a package's ``__init__`` importing
    its own submodules is not a cycle; a submodule importing a name from its package's ``__init__`` is.
    """
    modules = module_files(root, packages)
    edges: list[Edge] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = str(path.relative_to(root))
        for node in _runtime_nodes(tree):
            for target, names in _imported_names(node, module, path.name == "__init__.py"):
                targets = {f"{target}.{n}" if f"{target}.{n}" in modules else _resolve(target, modules)
                           for n in names} if names else {_resolve(target, modules)}
                edges += [Edge(module, found, rel, getattr(node, "lineno", 0))
                          for found in sorted(t for t in targets if t and t != module)]
    return edges


def import_cycles(edges: list[Edge]) -> list[list[Edge]]:
    """One shortest cycle through each strongly connected group of modules (Tarjan, then BFS)."""
    graph: dict[str, list[Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, []).append(edge)
        graph.setdefault(edge.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for edge in graph[node]:
            if edge.target not in index:
                connect(edge.target)
                low[node] = min(low[node], low[edge.target])
            elif edge.target in stack:
                low[node] = min(low[node], index[edge.target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_shortest_cycle(min(group), group, graph) for group in groups]


def _shortest_cycle(start: str, group: set[str], graph: dict[str, list[Edge]]) -> list[Edge]:
    paths: dict[str, list[Edge]] = {start: []}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for edge in sorted(graph[node], key=lambda e: (e.target, e.line)):
            if edge.target == start:
                return paths[node] + [edge]
            if edge.target in group and edge.target not in paths:
                paths[edge.target] = paths[node] + [edge]
                queue.append(edge.target)
    raise AssertionError(f"no cycle through {start}")  # unreachable for a strongly connected group


def describe(cycle: list[Edge]) -> str:
    return " -> ".join([cycle[0].source] + [f"{e.target} ({e.path}:{e.line})" for e in cycle])


def test_no_import_cycle_between_project_modules() -> None:
    cycles = [describe(c) for c in import_cycles(import_graph(ROOT))]
    assert cycles == [], "import cycles (each edge: the importing file and line):\n" + "\n".join(cycles)


def test_no_module_is_over_450_lines() -> None:
    sizes = {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
             for path in module_files(ROOT).values()}
    oversized = sorted(f"{name}: {lines} lines" for name, lines in sizes.items() if lines > MAX_MODULE_LINES)
    assert oversized == [], f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(oversized)


def _probe_package(root: Path) -> None:
    files = {
        # a package importing its own submodules is not a cycle ...
        "probe/__init__.py": "from probe import a\nfrom . import typed\nVERSION = 1\n",
        # ... but a lazy import inside a function closes one: a -> b -> a
        "probe/a.py": "import os\n\ndef later():\n    import probe.b.inner\n",
        "probe/b/__init__.py": "",
        "probe/b/inner.py": "from ..a import later\n",
        # TYPE_CHECKING imports do not run: typed <-> hints is not a cycle, its else branch is one edge
        "probe/typed.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from probe.hints import H\n"
                           "else:\n    import probe.plain\n"),
        "probe/hints.py": "import probe.typed\n",
        "probe/plain.py": "",
        # importlib and a name from the package's __init__: c -> probe -> typed ... and d <-> c
        "probe/c.py": "import importlib\nmod = importlib.import_module('probe.d')\n",
        "probe/d.py": "from probe.c import mod\nfrom probe import VERSION\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_cycle_checker_sees_lazy_relative_and_importlib_imports_but_not_type_checking(tmp_path: Path) -> None:
    _probe_package(tmp_path)
    edges = {(e.source, e.target, e.line) for e in import_graph(tmp_path, ("probe",))}
    assert edges == {("probe", "probe.a", 1), ("probe", "probe.typed", 2), ("probe.a", "probe.b.inner", 4),
                     ("probe.b.inner", "probe.a", 1), ("probe.typed", "probe.plain", 5),
                     ("probe.hints", "probe.typed", 1), ("probe.c", "probe.d", 2), ("probe.d", "probe.c", 1),
                     ("probe.d", "probe", 2)}
    cycles = sorted(describe(c) for c in import_cycles(import_graph(tmp_path, ("probe",))))
    assert cycles == ["probe.a -> probe.b.inner (probe/a.py:4) -> probe.a (probe/b/inner.py:1)",
                      "probe.c -> probe.d (probe/c.py:2) -> probe.c (probe/d.py:1)"]
