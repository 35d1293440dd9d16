"""each erasure receipt keeps the entry its erasure wrote in the archive's erasure ledger

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-06 13:40:00

The ledger (fleet/erasure_ledger.py) lives in the archive folder so that it outlives a database put back from
an older copy; an archive folder put back from an older copy loses the entries written since. Kept in the
receipt as well (the store folder and the entry: customer id, registration time, salted tenant hash,
pseudonym, time), the database writes a lost entry back. Receipts written before this revision keep none.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("erasure_receipts") as batch:
        batch.add_column(sa.Column("ledger", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("erasure_receipts") as batch:
        batch.drop_column("ledger")
