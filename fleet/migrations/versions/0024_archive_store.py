"""the archive's store id: files go under `store=<id>/`, and a sweep touches only this database's folder

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 08:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No row here: the first archive run draws the id, so copies of a fresh database do not share one.
    op.create_table(
        "archive_store",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("store", sa.String(32), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_archive_store_one_row")),
    )


def downgrade() -> None:
    op.drop_table("archive_store")
