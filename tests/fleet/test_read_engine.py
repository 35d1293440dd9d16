"""The read-only engine the API's read routes use: it refuses writes and sees each commit at once."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import DBAPIError

from fleet.db import READ_MMAP_BYTES, make_engine, session
from fleet.tables import Customer


@pytest.fixture
def reader(engine, database_url):
    """A read-only engine on the same migrated database as `engine`."""
    eng = make_engine(database_url, read_only=True)
    yield eng
    eng.dispose()


def test_refuses_writes(engine, reader):
    with reader.connect() as conn, pytest.raises(DBAPIError, match="(?i)read.?only"):
        conn.execute(Customer.__table__.insert().values(tenant="acme", name="Acme"))
    with session(engine) as sess:
        assert sess.scalar(select(func.count()).select_from(Customer)) == 0


def test_sees_each_commit_without_a_transaction_of_its_own(engine, reader):
    statements: list[str] = []
    event.listen(reader, "before_cursor_execute", lambda *args: statements.append(args[2]))
    count = select(func.count()).select_from(Customer)
    with reader.connect() as conn:  # one pooled connection across the writer's commit
        assert conn.execute(count).scalar() == 0
        with session(engine) as sess:
            sess.add(Customer(tenant="acme", name="Acme"))
        assert conn.execute(count).scalar() == 1
    assert not [sql for sql in statements if sql.strip().upper() in ("BEGIN", "ROLLBACK", "COMMIT")]


def test_sqlite_read_connections_map_the_file_and_are_reused_last_in_first_out(tmp_path):
    url = f"sqlite:///{tmp_path / 'servicecast.db'}"  # SQLite's pragmas and pool: no PostgreSQL case
    engine, reader = make_engine(url), make_engine(url, read_only=True)
    try:
        with reader.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA mmap_size").scalar() == READ_MMAP_BYTES
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA mmap_size").scalar() == 0  # the writer: its own cache
        first, second = reader.connect(), reader.connect()
        last_back = first.connection.dbapi_connection
        second.close()
        first.close()
        with reader.connect() as again:  # the last one given back: the warmest mapping and page cache
            assert again.connection.dbapi_connection is last_back
    finally:
        reader.dispose()
        engine.dispose()
