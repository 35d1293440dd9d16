"""The order in which `make test` deals modules out to its workers."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_modules_with_slow_tests_come_first_then_the_larger_ones(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n")
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n")
    pytester.makepyfile(
        test_a_small="def test_one(): pass\n",
        test_b_large="def test_one(): pass\ndef test_two(): pass\ndef test_three(): pass\n",
        test_c_slow="import pytest\n\n\n@pytest.mark.slow\ndef test_long(): pass\ndef test_short(): pass\n",
    )
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:xdist")
    lines = [line for line in result.outlines if "::" in line]
    assert lines == [
        "test_c_slow.py::test_long",
        "test_c_slow.py::test_short",
        "test_b_large.py::test_one",
        "test_b_large.py::test_two",
        "test_b_large.py::test_three",
        "test_a_small.py::test_one",
    ]
