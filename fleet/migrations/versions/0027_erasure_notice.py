"""the CRM is told of an erasure: a notice written with the receipt, an outbox row without a customer

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05 18:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "erasure_notices",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("receipt_id", _ID, nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["receipt_id"],
            ["erasure_receipts.id"],
            name="fk_erasure_notices_receipt_id_erasure_receipts",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("receipt_id", name="uq_erasure_notices_receipt_id"),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("customer_id", existing_type=_ID, nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE customer_id IS NULL")
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("customer_id", existing_type=_ID, nullable=False)
    op.drop_table("erasure_notices")
