"""Two runs of one job at once (a worker and a manual command), interleaved with events, not sleeps.

The first run is held at the commit of its first transaction that executed a chosen statement; the second
runs meanwhile until it waits for a lock (PostgreSQL: any session of the database waits on one; SQLite: it
executed the statement after which it waits for the write lock) or ends, then the first goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest
from sqlalchemy import Engine, event

from fleet import migrate
from fleet.db import make_engine
from tests import services

GUARD_S = 120  # a guard against a hang only: each wait ends at its condition
T = TypeVar("T")
Statement = Callable[[str], bool]


@contextmanager
def waiting_engine(url: str) -> Iterator[Engine]:
    """An engine on the migrated database at `url` whose SQLite connections wait for the write lock while the
    first run is held: longer than the 5 s default."""
    engine = make_engine(url, busy_timeout_ms=GUARD_S * 1000)
    migrate.ensure_schema(engine)
    yield engine
    engine.dispose()


def _until(done: Callable[[], bool], what: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + GUARD_S
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        thread.join(0.05)


def two_at_once(
    engine: Engine, run: Callable[[], T], *, held_after: Statement, waits_after: Statement
) -> list[T]:
    """The results of two `run`s: the first held at the commit of a transaction that executed a statement
    `held_after` accepts, while the second runs until it waits for a lock (SQLite: it executed a statement
    `waits_after` accepts) or ends. SQLite's busy timeout must exceed the hold: `GUARD_S`."""
    results: dict[threading.Thread, T] = {}
    failures: list[BaseException] = []
    held, go_on, begun = threading.Event(), threading.Event(), threading.Event()
    marked: set[int] = set()  # connections of the first run that executed a `held_after` statement

    def call() -> None:
        try:
            results[threading.current_thread()] = run()
        except BaseException as exc:  # reported by the test's thread
            failures.append(exc)

    first, second = threading.Thread(target=call), threading.Thread(target=call)

    def watch(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        me = threading.current_thread()
        if me is first and held_after(statement):
            marked.add(id(conn.connection.dbapi_connection))
        if me is second and waits_after(statement):
            begun.set()

    def hold(conn) -> None:  # noqa: ANN001
        mine = threading.current_thread() is first and id(conn.connection.dbapi_connection) in marked
        if mine and not held.is_set():
            held.set()
            go_on.wait()

    event.listen(engine, "before_cursor_execute", watch)
    event.listen(engine, "commit", hold)
    try:
        first.start()
        _until(lambda: held.is_set() or not first.is_alive(), "the first run's held commit", first)
        assert held.is_set(), failures or "the first run never executed the statement it is held after"
        second.start()
        if engine.dialect.name == "postgresql":
            waiting = lambda: services.waiting_on_lock(engine) > 0  # noqa: E731
        else:
            waiting = begun.is_set
        _until(lambda: waiting() or not second.is_alive(), "the second run to wait or end", second)
        go_on.set()
        first.join(GUARD_S)
        second.join(GUARD_S)
    finally:
        go_on.set()
        event.remove(engine, "before_cursor_execute", watch)
        event.remove(engine, "commit", hold)
    assert not failures, failures
    return [results[first], results[second]]
