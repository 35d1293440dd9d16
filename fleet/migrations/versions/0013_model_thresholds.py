"""model versions carry their operating threshold and the champion/challenger comparison

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 10:15:00
"""

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("threshold", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column("comparison", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True)
        )
    # Versions trained before this kept their threshold in their metrics only.
    bind = op.get_bind()
    for vid, metrics in bind.execute(sa.text("SELECT id, metrics FROM model_versions")).all():
        metrics = json.loads(metrics) if isinstance(metrics, str) else (metrics or {})
        if metrics.get("threshold") is not None:
            bind.execute(
                sa.text("UPDATE model_versions SET threshold = :t WHERE id = :i"),
                {"t": float(metrics["threshold"]), "i": vid},
            )


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("comparison")
        batch.drop_column("threshold")
