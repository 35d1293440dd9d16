"""Alembic migrations on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from fleet import migrate
from fleet.db import make_engine
from tests import services


def test_upgrade_matches_the_tables_and_downgrade_removes_them(database_url):
    engine = make_engine(database_url)
    try:
        migrate.ensure_schema(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        with engine.connect() as conn:
            diff = services.schema_differences(conn)
        assert diff == [], f"tables and migrations disagree: {diff}"
        assert {"telemetry", "quarantine", "machines", "customers"} <= set(inspect(engine).get_table_names())
        migrate.ensure_schema(engine)  # a second start is a no-op
        migrate.downgrade(engine, "base")
        assert "telemetry" not in inspect(engine).get_table_names()
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_the_head_and_the_current_revision_are_alembics(database_url):
    """`head_revision` and `current_revision` read without Alembic; they must say what Alembic says."""
    assert migrate.head_revision() == ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    engine = make_engine(database_url)

    def alembics() -> str | None:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    try:
        assert migrate.current_revision(engine) is None and alembics() is None
        migrate.ensure_schema(engine)
        assert migrate.current_revision(engine) == alembics() == migrate.head_revision()
        migrate.downgrade(engine, "0001")
        assert migrate.current_revision(engine) == alembics() == "0001"
        migrate.downgrade(engine, "base")
        assert migrate.current_revision(engine) is None and alembics() is None
    finally:
        engine.dispose()
