"""Dropping a test's PostgreSQL database (tests/services.py) while other sessions get in its way."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from tests import services

pytestmark = pytest.mark.postgres


@pytest.fixture
def databases() -> Iterator[list[services.PostgresDatabase]]:
    """Databases the test makes (append to the list), dropped again at the end if the test left them."""
    if not services.postgres_available():
        services.unavailable(f"PostgreSQL at {services.POSTGRES_ADMIN_URL}")
    made: list[services.PostgresDatabase] = []
    yield made
    for db in made:
        db.execute("DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def new_database(databases: list[services.PostgresDatabase]) -> services.PostgresDatabase:
    """An empty database of the test's own."""
    databases.append(services.PostgresDatabase("sc_droptest").create())
    return databases[-1]


def exists(db: services.PostgresDatabase) -> bool:
    """Whether the server still has the database."""
    with db.admin.connect() as conn:
        found = conn.scalar(text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": db.name})
    db.admin.dispose()
    return bool(found)


@contextmanager
def reconnecting(url: str, sessions: int) -> Iterator[None]:
    """Sessions that stay on the database and connect again as soon as they are cut, as a pool would."""
    stop = threading.Event()
    connected = threading.Semaphore(0)

    def hold() -> None:
        engine = create_engine(url, poolclass=NullPool)
        while not stop.is_set():
            try:
                with engine.connect() as conn:
                    connected.release()
                    while not stop.is_set():
                        conn.execute(text("SELECT 1"))
            except DBAPIError:
                continue  # cut by the drop, or the database is gone: connect again
        engine.dispose()

    threads = [threading.Thread(target=hold, daemon=True) for _ in range(sessions)]
    for thread in threads:
        thread.start()
    for _ in threads:
        connected.acquire()  # every session is in before the drop starts
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def test_a_database_whose_sessions_keep_reconnecting_is_dropped(databases) -> None:
    # A session that gets back in between the cut and the DROP fails a plain DROP after 5 s; that is a
    # race, so three databases are dropped under reconnecting sessions.
    for _ in range(3):
        db = new_database(databases)
        with reconnecting(db.url, sessions=8):
            db.drop()
        assert not exists(db)


def test_a_drop_blocked_by_a_lock_elsewhere_is_given_up_and_names_the_session_holding_it(databases) -> None:
    db = new_database(databases)
    db.drop_wait_s = 2.0
    holder = create_engine(services.POSTGRES_ADMIN_URL, poolclass=NullPool)
    with holder.connect() as conn:
        # A session of another database holds a lock on this one in an open transaction: no cut of the
        # database's own sessions (nor FORCE) ends it, and DROP DATABASE waits for it.
        conn.execute(text(f"COMMENT ON DATABASE \"{db.name}\" IS 'held'"))
        pid = conn.scalar(text("SELECT pg_backend_pid()"))
        began = time.monotonic()
        with pytest.raises(services.DropFailed) as failed:
            db.drop()
        waited = time.monotonic() - began
        conn.rollback()
    holder.dispose()
    message = str(failed.value)
    assert "given up after 2 s" in message
    assert "the drop: active, waits on Lock/object" in message
    elsewhere = make_url(services.POSTGRES_ADMIN_URL).database
    assert f"pid {pid} (client backend, db {elsewhere}): idle in transaction" in message
    assert waited >= 2.0
    # The drop then waits for the checkpoint it forces, past 2 s behind other runs' copies (a loaded CI):
    # its bound goes back to the default, since here it is the drop going through that is tested.
    db.drop_wait_s = services.DROP_WAIT_S
    db.drop()  # once the lock is gone the drop goes through
    assert not exists(db)
