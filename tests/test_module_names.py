"""No module binds a top-level name twice: the second silently replaces the first (and its comment)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.test_layers import PACKAGES, ROOT


def bound_names(statement: ast.stmt) -> list[str]:
    """The names a top-level statement binds by assignment, `def` or `class` (imports are ruff's F811)."""
    if isinstance(statement, ast.Assign):
        return [target.id for target in statement.targets if isinstance(target, ast.Name)]
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return [statement.target.id]
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [statement.name]
    return []


def twins(root: Path) -> list[str]:
    """`path:line: name` for each top-level name bound again, over every package under root."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            first: dict[str, int] = {}
            for statement in ast.parse(path.read_text()).body:
                for name in bound_names(statement):
                    if name in first:
                        found.append(f"{path.relative_to(root)}:{statement.lineno}: {name}")
                    first.setdefault(name, statement.lineno)
    return found


def test_no_module_binds_a_top_level_name_twice() -> None:
    assert twins(ROOT) == []
