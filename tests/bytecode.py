"""Compile the project's modules before the tests start the CLI and API processes that import them."""

from __future__ import annotations

import compileall
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "benchmarks", "fleet", "ingest", "models", "servicecast", "simulators", "tests")
# pytest compiles the test modules itself, with their asserts rewritten.
NOT_TEST_MODULES = re.compile(r"[/\\](test_[^/\\]*|conftest)\.py$")


def compile_packages() -> None:
    """Write the missing or stale __pycache__ files of the project's packages.

    With PYTHONDONTWRITEBYTECODE=1 (as in CI's environment) no process writes them, so every Python process a
    test starts compiled each project module it imported from source again.
    """
    for name in PACKAGES:
        compileall.compile_dir(ROOT / name, quiet=2, rx=NOT_TEST_MODULES, workers=1)
