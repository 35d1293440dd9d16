"""the append-only audit trail admits two sanctioned changes: erasure pseudonyms and retention past the floor

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 13:30:00

Only a transaction that switched audit maintenance on may update or delete audit rows: on PostgreSQL
with `SET LOCAL servicecast.audit_maintenance = 'on'`, on SQLite with a row in `audit_maintenance` that
the same transaction inserts and deletes (other connections never see it). `fleet/erasure.py` and
`fleet/retention.py` are the only code that does this.
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

TABLE = "workflow_events"
REFUSAL = "the audit trail is append-only"


def _pg_function(allow: bool) -> str:
    maintenance = (
        "IF TG_OP <> 'TRUNCATE' AND current_setting('servicecast.audit_maintenance', true) = 'on' THEN\n"
        "  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;\n"
        "  RETURN NEW;\n"
        "END IF;\n"
        if allow
        else ""
    )
    return (
        "CREATE OR REPLACE FUNCTION servicecast_refuse_audit_change() RETURNS trigger\n"
        "LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n{maintenance}RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege';\nEND $$"
    )


def _sqlite_triggers(allow: bool) -> None:
    when = " WHEN NOT EXISTS (SELECT 1 FROM audit_maintenance)" if allow else ""
    for event in ("update", "delete"):
        op.execute(f"DROP TRIGGER {TABLE}_no_{event}")
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_{event} BEFORE {event.upper()} ON {TABLE}{when}"
            f" BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        )


def upgrade() -> None:
    op.execute("CREATE TABLE audit_maintenance (reason VARCHAR(64) NOT NULL)")  # unused on PostgreSQL
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_pg_function(allow=True))
    else:
        _sqlite_triggers(allow=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_pg_function(allow=False))
    else:
        _sqlite_triggers(allow=False)
    op.execute("DROP TABLE audit_maintenance")
