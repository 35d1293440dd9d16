"""Alembic migrations applied programmatically: `servicecast db upgrade` and every process start."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# Every process start asks whether the database is at head: answered without Alembic, whose import and
# reading of every script were a third of a short command's CPU (tests/fleet/test_migrations.py checks that
# Alembic gives the same answers).
_REVISION = re.compile(r'^revision = "([^"]+)"$', re.M)
# Any constant works; it only has to be the same in every servicecast process.
PG_MIGRATION_LOCK = 7_214_001


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest revision shipped with this code: the one of the highest-numbered script (one chain)."""
    newest = max((MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    return _REVISION.search(newest.read_text(encoding="utf-8"))[1]


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated (or stepped back to base)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.scalars(text("SELECT version_num FROM alembic_version")).one_or_none()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; concurrent starters on PostgreSQL wait for each other."""
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Step the schema back to `revision`."""
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def ensure_schema(engine: Engine) -> None:
    """Apply pending migrations unless the database is already at head (cheap on every start)."""
    if current_revision(engine) != head_revision():
        upgrade(engine)
