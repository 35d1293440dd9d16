"""catalog versions: catalogs added in the console or API, the one activated last in force

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 21:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_catalog_versions")),
    )


def downgrade() -> None:
    op.drop_table("catalog_versions")
