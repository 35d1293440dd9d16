"""The OPC UA tests' own check: no asyncio task left waiting on a loop that no longer runs."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterable, Iterator

import pytest


def _sees_every_task(registry: Iterable[asyncio.Task] | None) -> bool:
    """Whether asyncio's registry of tasks lists a task just made (it does on 3.11-3.13, not on 3.14)."""
    if registry is None:
        return False
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(asyncio.sleep(0))
        seen = task in set(registry)
        loop.run_until_complete(task)
    finally:
        loop.close()
    return seen


_REGISTRY = getattr(asyncio.tasks, "_all_tasks", getattr(asyncio.tasks, "_scheduled_tasks", None))
# asyncio's weak set of the tasks not yet collected, else the heap: a walk of a test worker's heap
# (gc.get_objects, ~700,000 objects after collection) cost ~0.23 CPU-s after each test.
_ALL_TASKS = _REGISTRY if _sees_every_task(_REGISTRY) else None


@pytest.fixture(autouse=True)
def no_task_left_pending() -> Iterator[None]:
    """Fail a test that leaves a task pending on a stopped or closed loop (a server's, after its stop): the
    collector destroys it later, inside whichever test then runs, which sees asyncio log it as an error."""
    yield
    tasks = gc.get_objects() if _ALL_TASKS is None else list(_ALL_TASKS)
    left = [
        f"{task.get_coro().__qualname__} ({task.get_name()})"
        for task in tasks
        if isinstance(task, asyncio.Task) and not task.done() and not task.get_loop().is_running()
    ]
    if left:
        pytest.fail(f"asyncio tasks left pending on a loop that no longer runs: {', '.join(left)}")
