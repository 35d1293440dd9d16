"""The test PostgreSQL databases tests/services.py makes: how they are set up for the suite's cost."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from fleet import partitions
from fleet.db import make_engine
from tests import database_pool, services

pytestmark = pytest.mark.postgres


def synchronous_commit(url: str) -> str:
    """What a new session of the database at `url` runs with."""
    engine = make_engine(url)
    with engine.connect() as conn:
        value = conn.scalar(text("SHOW synchronous_commit"))
    engine.dispose()
    return value


def test_a_test_database_commits_without_waiting_for_the_disk(postgres_url: str) -> None:
    """Tests never crash the server, so a commit need not wait for its WAL flush: behind a checkpoint's
    fsyncs that wait was milliseconds per commit."""
    assert synchronous_commit(postgres_url) == "off"


def test_a_copy_of_a_template_commits_without_waiting_too(
    migrated_templates: services.MigratedTemplates, postgres_drops: services.BackgroundDrops
) -> None:
    """A database's settings are not copied by CREATE DATABASE … TEMPLATE: each copy (a migrated database, a
    world) gets its own."""
    if not services.postgres_available():
        services.unavailable(f"PostgreSQL at {services.POSTGRES_ADMIN_URL}")
    copy = services.PostgresDatabase().create(template=migrated_templates.postgres())
    try:
        assert synchronous_commit(copy.url) == "off"
    finally:
        postgres_drops.drop(copy)


@pytest.fixture
def pool(postgres_drops: services.BackgroundDrops) -> Iterator[database_pool.DatabasePool]:
    """A pool of the test's own, its databases dropped at the end."""
    if not services.postgres_available():
        services.unavailable(f"PostgreSQL at {services.POSTGRES_ADMIN_URL}")
    made = database_pool.DatabasePool(postgres_drops, ahead=1)  # `take` waits for the reset
    yield made
    made.close()


def contents(url: str) -> dict[str, object]:
    """What a test could see of a database: every table's rows, the sequences, the partitions, the sessions
    and advisory locks on it, and what the next value of a sequence is."""
    engine = make_engine(url)
    with engine.connect() as conn:
        tables = conn.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        ).all()
        seen: dict[str, object] = {
            name: conn.execute(text(f"SELECT * FROM {name} ORDER BY 1")).all() for name in tables
        }
        seen["sequences"] = conn.execute(
            text("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1")
        ).all()
        seen["partitions"] = [p.name for p in partitions.listing(conn)]
        seen["columns"] = conn.execute(
            text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' ORDER BY 1, 2"
            )
        ).all()
        seen["other sessions"] = conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        )
        seen["advisory locks"] = conn.scalar(
            text(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND d.datname = current_database()"
            )
        )
        seen["next user id"] = conn.scalar(text("SELECT nextval('users_id_seq')"))
    engine.dispose()
    return seen


def fresh_contents(template: str, drops: services.BackgroundDrops) -> dict[str, object]:
    """`contents` of a copy of `template` made now."""
    fresh = services.PostgresDatabase().create(template=template)
    try:
        return contents(fresh.url)
    finally:
        drops.drop(fresh)


def leave_traces(url: str) -> list[Connection]:
    """What a careless test leaves: rows, a partition, advanced sequences, changed and deleted rows the
    migrations wrote, and sessions still open, one with a temporary table and an advisory lock, one in a
    transaction."""
    engine = make_engine(url)
    partitions.ensure(engine, {datetime(2030, 1, 7, tzinfo=UTC)})
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO customers (tenant, name, auto_registered, created_at) "
                "VALUES ('acme', 'Acme', false, now())"
            )
        )
        conn.execute(text("INSERT INTO watermarks (name, value, updated_at) VALUES ('policy', 7, now())"))
        conn.execute(text("SELECT nextval('users_id_seq'), nextval('customers_id_seq')"))
        conn.execute(text("UPDATE change_counters SET version = version + 1"))
        conn.execute(text("DELETE FROM alembic_version"))
    held = engine.connect()
    held.execute(text("CREATE TEMP TABLE scratch (x int)"))  # its schema, pg_temp_N, outlives the session
    held.commit()
    held.execute(text("SELECT pg_advisory_lock(42)"))
    open_transaction = engine.connect()
    open_transaction.execute(
        text("INSERT INTO watermarks (name, value, updated_at) VALUES ('open', 1, now())")
    )
    return [held, open_transaction]


def test_a_database_given_back_after_a_careless_test_comes_back_as_fresh_as_a_new_copy(
    pool: database_pool.DatabasePool,
    migrated_templates: services.MigratedTemplates,
    postgres_drops: services.BackgroundDrops,
) -> None:
    template = migrated_templates.postgres()
    expected = fresh_contents(template, postgres_drops)
    db = pool.take(template)
    first_url = db.url
    sessions = leave_traces(db.url)
    assert contents(db.url) != expected
    pool.give_back(db)
    again = pool.take(template)
    assert (again is db, pool.dropped) == (True, [])
    assert again.url != first_url
    assert contents(again.url) == expected
    for session in sessions:  # cut by the reset
        with pytest.raises(DBAPIError):
            session.execute(text("SELECT 1"))


def test_a_session_connecting_again_after_the_reset_finds_no_database(
    pool: database_pool.DatabasePool, migrated_templates: services.MigratedTemplates
) -> None:
    """The reset renames the database: a straggler of the last test cannot write into the next one's."""
    db = pool.take(migrated_templates.postgres())
    old_url = db.url
    pool.give_back(db)
    pool.settle()
    with pytest.raises(DBAPIError, match="does not exist"):
        make_engine(old_url).connect()


@pytest.mark.parametrize(
    "change",
    [
        "ALTER TABLE customers ADD COLUMN note text",
        "CREATE INDEX ix_note ON watermarks (value)",
        "ALTER TABLE machines DISABLE TRIGGER ALL",
        "CREATE TABLE scratch (x int)",
        "COMMENT ON TABLE customers IS 'changed'",
        "SELECT lo_create(0)",
        "ANALYZE customers",
        "ALTER DATABASE {db} SET work_mem = '8MB'",
        "REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC",
    ],
)
def test_a_database_whose_catalog_a_test_changed_is_dropped_not_given_again(
    pool: database_pool.DatabasePool,
    migrated_templates: services.MigratedTemplates,
    postgres_drops: services.BackgroundDrops,
    change: str,
) -> None:
    template = migrated_templates.postgres()
    expected = fresh_contents(template, postgres_drops)
    db = pool.take(template)
    if "{db}" in change:
        db.execute(change)
    else:
        engine = make_engine(db.url)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO customers (tenant, name, auto_registered, created_at) "
                    "VALUES ('acme', 'Acme', false, now())"
                )
            )
            conn.execute(text(change))
        engine.dispose()
    pool.give_back(db)
    again = pool.take(template)
    assert len(pool.dropped) == 1
    assert again is not db
    assert contents(again.url) == expected


def test_an_empty_database_given_back_is_empty_again(pool: database_pool.DatabasePool) -> None:
    db = pool.take(None)
    engine = make_engine(db.url)
    with engine.begin() as conn:
        conn.execute(text("CREATE SEQUENCE counter"))
    engine.dispose()
    pool.give_back(db)
    db = pool.take(None)
    assert pool.dropped == ["its catalog"]
    pool.give_back(db)
    assert (pool.take(None) is db, len(pool.dropped)) == (True, 1)
