"""the archive store's owner: a copy of the database (a restored backup) is told apart before either archives

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05 14:20:00
"""

import sqlalchemy as sa
from alembic import op

from fleet import archive_owner

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("archive_store") as batch:
        batch.add_column(sa.Column("owner", sa.Text, nullable=True))
    # The database upgraded owns its store from now on; the identity as the code reads it, so that the checks
    # after the upgrade compare like with like. A copy made before the upgrade records its own identity here.
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE archive_store SET owner = :owner"), {"owner": archive_owner.of(conn)})


def downgrade() -> None:
    with op.batch_alter_table("archive_store") as batch:
        batch.drop_column("owner")
