"""purposes and audit: the audit trail keeps actor names and values before and after, append-only

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLE = "workflow_events"
REFUSAL = "the audit trail is append-only"
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        # A row must outlive the user it names: no foreign key whose ON DELETE would update it.
        batch_op.drop_constraint("fk_workflow_events_actor_id_users", type_="foreignkey")
        batch_op.alter_column("subject_id", existing_type=_ID, nullable=True)
        batch_op.add_column(sa.Column("actor", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("before", _JSON, nullable=True))
        batch_op.add_column(sa.Column("after", _JSON, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION servicecast_refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}"
            " FOR EACH ROW EXECUTE FUNCTION servicecast_refuse_audit_change()"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}"
            " FOR EACH STATEMENT EXECUTE FUNCTION servicecast_refuse_audit_change()"
        )
        return
    for event in ("update", "delete"):
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_{event} BEFORE {event.upper()} ON {TABLE}"
            f" BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {TABLE}_no_truncate ON {TABLE}")
        op.execute(f"DROP TRIGGER {TABLE}_append_only ON {TABLE}")
        op.execute("DROP FUNCTION servicecast_refuse_audit_change()")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER {TABLE}_no_{event}")
    # Rows about no single object (e.g. a failed sign-in) have no place in the older table.
    op.execute(f"DELETE FROM {TABLE} WHERE subject_id IS NULL")
    op.execute(f"UPDATE {TABLE} SET actor_id = NULL WHERE actor_id NOT IN (SELECT id FROM users)")
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_column("after")
        batch_op.drop_column("before")
        batch_op.drop_column("actor")
        batch_op.alter_column("subject_id", existing_type=_ID, nullable=False)
        batch_op.create_foreign_key(
            "fk_workflow_events_actor_id_users", "users", ["actor_id"], ["id"], ondelete="SET NULL"
        )
