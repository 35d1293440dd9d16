"""Another process's commit between a pass's reads and its first write, for SQLite write-lock tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event

from fleet.db import make_engine

WRITES = ("INSERT", "UPDATE", "DELETE")


@contextmanager
def commit_elsewhere_before_first_write(engine: Engine) -> Iterator[list[str]]:
    """Just before the first INSERT, UPDATE or DELETE on `engine`, another connection commits a change.

    Yields what happened: ["committed first"] when the other connection got the lock (a deferred
    transaction that read first then fails with "database is locked", no busy wait), or ["waited"] when
    the pass already held SQLite's write lock, so the other writer timed out waiting its turn.
    """
    other = make_engine(engine.url.render_as_string(hide_password=False), busy_timeout_ms=100)
    happened: list[str] = []

    def write_elsewhere(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if happened or not statement.lstrip().upper().startswith(WRITES):
            return
        try:
            with other.begin() as elsewhere:
                # Any committed change will do; the header's user version is in no table the pass reads.
                version = elsewhere.exec_driver_sql("PRAGMA user_version").scalar()
                elsewhere.exec_driver_sql(f"PRAGMA user_version = {int(version) + 1}")
            happened.append("committed first")
        except Exception:  # noqa: BLE001 -- the pass holds the write lock: the other writer waits its turn
            happened.append("waited")

    event.listen(engine, "before_cursor_execute", write_elsewhere)
    try:
        yield happened
    finally:
        event.remove(engine, "before_cursor_execute", write_elsewhere)
        other.dispose()
