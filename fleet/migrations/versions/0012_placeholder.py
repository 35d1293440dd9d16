"""labels and service history (reserved: filled in by the change that needs it)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 10:15:00
"""

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
