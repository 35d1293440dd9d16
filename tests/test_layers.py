"""Imports flow one way between our packages (docs/architecture.md): parsed from every module with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fleet", "ingest", "models", "api", "simulators", "servicecast", "benchmarks", "tests")
# package -> the packages of ours it may import (besides itself)
MAY_IMPORT: dict[str, frozenset[str]] = {
    "fleet": frozenset(),
    "ingest": frozenset({"fleet"}),
    "models": frozenset({"fleet"}),
    "api": frozenset({"fleet", "models"}),
    "simulators": frozenset({"fleet"}),
    "servicecast": frozenset(PACKAGES) - {"tests", "benchmarks"},
    "benchmarks": frozenset(PACKAGES) - {"tests"},
    "tests": frozenset(PACKAGES),
}


def imported_packages(source: str) -> set[str]:
    """Top-level names of every absolute import in a module, including imports inside functions."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def violations(root: Path) -> list[str]:
    """`module imports package` for each import the table above forbids, over every package under root."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            for name in sorted(imported_packages(path.read_text()) & set(PACKAGES)):
                if name != package and name not in MAY_IMPORT[package]:
                    found.append(f"{path.relative_to(root)} imports {name}")
    return found


def test_every_module_imports_only_the_packages_its_layer_may() -> None:
    assert violations(ROOT) == []


def test_the_check_finds_a_forbidden_import_in_a_function_body(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    nested = "def evaluate():\n    from simulators.engine import simulate\n"
    (tmp_path / "models" / "cli.py").write_text(nested)
    (tmp_path / "api" / "app.py").write_text("import benchmarks.api\nfrom models import versions\n")
    (tmp_path / "benchmarks" / "api.py").write_text("from tests.services import free_port\n")
    (tmp_path / "servicecast" / "cli.py").write_text("from api import app\nfrom simulators import cli\n")
    assert violations(tmp_path) == [
        "models/cli.py imports simulators",
        "api/app.py imports benchmarks",
        "benchmarks/api.py imports tests",
    ]
