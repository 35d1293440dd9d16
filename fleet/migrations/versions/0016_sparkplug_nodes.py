"""sparkplug_nodes: each Sparkplug B host's view of each edge node (bdSeq, seq, aliases), kept with the data

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-10 10:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sparkplug_nodes",
        sa.Column("host_id", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.String(length=128), nullable=False),
        sa.Column("edge_node", sa.String(length=128), nullable=False),
        sa.Column("state", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("host_id", "group_id", "edge_node", name=op.f("pk_sparkplug_nodes")),
    )


def downgrade() -> None:
    op.drop_table("sparkplug_nodes")
