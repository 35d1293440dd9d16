"""The test PostgreSQL databases tests/services.py makes: how they are set up for the suite's cost."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from fleet.db import make_engine
from tests import services

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
