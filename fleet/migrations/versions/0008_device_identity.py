"""device identity: a broker credential per machine; grants marked as assumed by auto-registration

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "machine_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["machine_id"],
            ["machines.id"],
            name=op.f("fk_machine_credentials_machine_id_machines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_machine_credentials")),
        sa.UniqueConstraint("machine_id", name=op.f("uq_machine_credentials_machine_id")),
        sa.UniqueConstraint("username", name=op.f("uq_machine_credentials_username")),
    )
    with op.batch_alter_table("data_use_grants") as batch_op:
        batch_op.add_column(sa.Column("assumed", sa.Boolean(), server_default=sa.false(), nullable=False))
    # Grants written by auto-registration before this column existed were assumed too.
    grants = sa.table("data_use_grants", sa.column("granted_by"), sa.column("assumed"))
    op.execute(grants.update().where(grants.c.granted_by == "auto-register").values(assumed=True))


def downgrade() -> None:
    with op.batch_alter_table("data_use_grants") as batch_op:
        batch_op.drop_column("assumed")
    op.drop_table("machine_credentials")
