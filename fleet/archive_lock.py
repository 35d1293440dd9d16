"""The database's archive lock, apart from the archive's reader and writer: an erasure takes it without
importing pandas and pyarrow, which it needs only for a customer with archived rows."""

from __future__ import annotations

import fcntl
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

# pg_advisory_lock(_RUN_LOCK): held by the one archive run of a PostgreSQL database.
_RUN_LOCK = zlib.crc32(b"servicecast.archive.run")


@contextmanager
def exclusive(engine: Engine, *, wait: bool) -> Iterator[bool]:
    """Whether this block holds the database's archive lock (waiting for it when `wait`), until it ends.

    An archive run holds it throughout: a file it wrote and has not yet registered looks like a killed
    run's orphan, and another run's sweep must not delete it. Erasure takes it too. PostgreSQL: a session
    advisory lock; SQLite: an flock on a file beside the database.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            take = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
            held = conn.scalar(text(f"SELECT {take}(:key)"), {"key": _RUN_LOCK}) is not False
            try:
                yield held
            finally:
                if held:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _RUN_LOCK})
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield True  # one connection, one process: nobody else can run
        return
    with open(f"{database}.archive-lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True  # closing the file releases the lock
