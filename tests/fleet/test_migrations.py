"""Alembic migrations on SQLite and PostgreSQL."""

from __future__ import annotations

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
