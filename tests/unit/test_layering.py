"""Dependencies point one way: states <- connectors <- flows; the domain does no I/O."""

from __future__ import annotations

import ast
import subprocess
import sys
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
