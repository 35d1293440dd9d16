"""machine types as data (reserved: filled in by the change that needs it)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:15:00
"""

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
