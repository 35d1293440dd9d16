"""Alembic migrations on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from fleet import migrate, partitions
from fleet.db import make_engine
from fleet.tables import Base


def test_upgrade_matches_the_tables_and_downgrade_removes_them(database_url):
    engine = make_engine(database_url)
    try:
        migrate.ensure_schema(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        with engine.connect() as conn:
            # telemetry's partitions (PostgreSQL) are not tables of their own to the ORM
            opts = {
                "compare_type": True,
                "include_name": lambda name, kind, _: kind != "table" or not partitions.is_partition(name),
            }
            diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
        assert diff == [], f"tables and migrations disagree: {diff}"
        assert {"telemetry", "quarantine", "machines", "customers"} <= set(inspect(engine).get_table_names())
        migrate.ensure_schema(engine)  # a second start is a no-op
        migrate.downgrade(engine, "base")
        assert "telemetry" not in inspect(engine).get_table_names()
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()
