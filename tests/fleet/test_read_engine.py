"""The read-only engine the API's read routes use: it refuses writes and sees each commit at once."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import DBAPIError

from fleet.db import make_engine, session
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
