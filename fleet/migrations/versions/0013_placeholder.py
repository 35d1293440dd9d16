"""model thresholds and champion/challenger (reserved: filled in by the change that needs it)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 10:15:00
"""

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
