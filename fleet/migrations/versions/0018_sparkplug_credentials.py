"""sparkplug_credentials: each Sparkplug B edge node's and host's own broker identity

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-10 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sparkplug_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=300), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sparkplug_credentials")),
        sa.UniqueConstraint("username", name=op.f("uq_sparkplug_credentials_username")),
    )


def downgrade() -> None:
    op.drop_table("sparkplug_credentials")
