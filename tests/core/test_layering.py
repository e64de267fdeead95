"""No arrows back up: ``qimeng.core`` imports nothing from the agents built on it."""

from __future__ import annotations

import ast
from pathlib import Path

import qimeng.core

AGENTS = ("qimeng.kernels", "qimeng.hardware", "qimeng.llm")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_imports_no_agent_package():
    core_dir = Path(qimeng.core.__file__).parent
    offending = {
        f"{path.name}: {name}"
        for path in sorted(core_dir.rglob("*.py"))
        for name in imported_modules(path)
        if name.startswith(AGENTS)
    }
    assert not offending, sorted(offending)
