"""The OPC UA tests' own check: no asyncio task left waiting on a loop that no longer runs."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def no_task_left_pending() -> Iterator[None]:
    """Fail a test that leaves a task pending on a stopped or closed loop (a server's, after its stop): the
    collector destroys it later, inside whichever test then runs, which sees asyncio log it as an error."""
    yield
    left = [
        f"{task.get_coro().__qualname__} ({task.get_name()})"
        for task in gc.get_objects()
        if isinstance(task, asyncio.Task) and not task.done() and not task.get_loop().is_running()
    ]
    if left:
        pytest.fail(f"asyncio tasks left pending on a loop that no longer runs: {', '.join(left)}")
