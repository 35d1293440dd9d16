"""a notification subscription whose webhook answered 410 Gone is disabled, with the reason

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 23:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notification_subscriptions") as batch:
        batch.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("disabled_reason", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notification_subscriptions") as batch:
        batch.drop_column("disabled_reason")
        batch.drop_column("disabled_at")
