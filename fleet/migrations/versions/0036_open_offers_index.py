"""an index on offers by status and expiry, for the policy's sweep

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07 12:00:00

Every policy pass sweeps the open offers: those of an alert found "no fault", those of customers that no
longer grant 'offers', those past their expiry. Each of its three queries scanned the whole offers table,
which grows with every offer ever made; with this index each reads the open offers only.
"""

from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

INDEX = "ix_offers_status_expires"


def upgrade() -> None:
    op.create_index(INDEX, "offers", ["status", "expires_at"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="offers")
