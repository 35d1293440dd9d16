"""How an xdist worker ends: its garbage is collected before it reports its end to the controller."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]


def test_a_worker_collects_its_garbage_before_it_says_it_has_finished(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """execnet gives a worker 5 s to end once the controller asks, then interrupts it (SIGINT)."""
    pytester.makeconftest('pytest_plugins = ["tests.conftest"]\n')  # the suite's own hooks
    pytester.makepyfile(
        test_slow_garbage=(
            "import gc\n"
            "import time\n\n"
            "gc.disable()  # the cycle below waits for pytest's own collections\n\n\n"
            "class Slow:\n"
            "    def __del__(self):\n"
            "        time.sleep(5.5)  # a full collection of a large heap, on a loaded machine\n\n\n"
            "def test_leaves_a_cycle():\n"
            "    slow = Slow()\n"
            "    slow.itself = slow\n"
        )
    )
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    result = pytester.runpytest_subprocess("-n", "1", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    output = result.stdout.str() + result.stderr.str()
    assert "KeyboardInterrupt" not in output, output
