"""change counters: a version per watched table, raised by triggers, for readers' caches

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Frozen here rather than imported: a migration must not change when the code does.
WATCHED = ("alerts",)
_SQLITE_EVENTS = ("insert", "update", "delete")


def upgrade() -> None:
    op.create_table(
        "change_counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_change_counters")),
    )
    counters = sa.table("change_counters", sa.column("name"), sa.column("version"))
    op.bulk_insert(counters, [{"name": name, "version": 0} for name in WATCHED])
    # The counter row is written in the same transaction as the data, so a reader that reads the counter
    # before the data can never pair an old counter with data it has not seen.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION servicecast_bump_change_counter() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE change_counters SET version = version + 1 WHERE name = TG_TABLE_NAME;
                RETURN NULL;
            END $$
            """
        )
        for table in WATCHED:
            # Deferred to commit: an immediate trigger would hold the counter row's lock from a
            # transaction's first alert write to its commit, and every other alert write would wait.
            op.execute(
                f"CREATE CONSTRAINT TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table}"
                " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
                " EXECUTE FUNCTION servicecast_bump_change_counter()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_truncated AFTER TRUNCATE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION servicecast_bump_change_counter()"
            )
        return
    for table in WATCHED:  # SQLite has row triggers only
        for event in _SQLITE_EVENTS:
            op.execute(
                f"CREATE TRIGGER {table}_{event}_changed AFTER {event.upper()} ON {table} BEGIN"
                f" UPDATE change_counters SET version = version + 1 WHERE name = '{table}'; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER {table}_truncated ON {table}")
            op.execute(f"DROP TRIGGER {table}_changed ON {table}")
        op.execute("DROP FUNCTION servicecast_bump_change_counter()")
    else:
        for table in WATCHED:
            for event in _SQLITE_EVENTS:
                op.execute(f"DROP TRIGGER {table}_{event}_changed")
    op.drop_table("change_counters")
