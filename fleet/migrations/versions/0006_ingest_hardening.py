"""ingest hardening: prefix-only quarantine rows, the scorer's watermark on arrival time

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("original_size", sa.Integer(), nullable=True))
    with op.batch_alter_table("telemetry", schema=None) as batch_op:
        batch_op.create_index("ix_telemetry_machine_received", ["machine_id", "received_at"], unique=False)
    # Watermarks in seq cannot be carried over to arrival times: every machine is scored once more.
    with op.batch_alter_table("score_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_column("last_seq")


def downgrade() -> None:
    with op.batch_alter_table("score_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "last_seq",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=False,
                server_default="0",
            )
        )
        batch_op.drop_column("last_received_at")
    with op.batch_alter_table("telemetry", schema=None) as batch_op:
        batch_op.drop_index("ix_telemetry_machine_received")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_column("original_size")
