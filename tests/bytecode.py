"""Compile the project's modules, and pytest's rewrites of the test modules, once for every process."""

from __future__ import annotations

import compileall
import re
from pathlib import Path

import pytest
from _pytest.assertion import rewrite

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


def write_rewritten(config: pytest.Config) -> None:
    """Write pytest's assert-rewritten pycs of the test modules and of the plugins this process rewrote.

    pytest writes none with PYTHONDONTWRITEBYTECODE=1 (CI's environment), so each xdist worker rewrote the
    ~300 test modules and the pytest plugins' modules (hypothesis, schemathesis) again as it collected.
    """
    state = config.stash.get(rewrite.assertstate_key, None)
    if getattr(state, "hook", None) is None:
        return  # --assert=plain: nothing is rewritten
    try:
        tests = [*(ROOT / "tests").rglob("test_*.py"), *(ROOT / "tests").rglob("conftest.py")]
        for source in {*tests, *(Path(path) for path in state.hook._rewritten_names.values())}:
            pyc = rewrite.get_cache_dir(source) / (source.name[:-3] + rewrite.PYC_TAIL)
            if rewrite._read_pyc(source, pyc) is None and rewrite.try_makedirs(pyc.parent):
                key, code = rewrite._rewrite_test(source, config)  # the source's hash (pytest 9), stat (8)
                rewrite._write_pyc(state, code, key, pyc)
    except Exception:  # pytest's private helpers moved or changed: the workers rewrite for themselves
        return
