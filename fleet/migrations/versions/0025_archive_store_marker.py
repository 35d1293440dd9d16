"""the archive store's marker token: a copy of the database (a restored backup) sharing its folder stops

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05 11:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL until the next archive run writes the store folder's marker (`fleet.archive_store`).
    with op.batch_alter_table("archive_store") as batch:
        batch.add_column(sa.Column("token", sa.String(32), nullable=True))
        batch.add_column(sa.Column("pending", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("archive_store") as batch:
        batch.drop_column("pending")
        batch.drop_column("token")
