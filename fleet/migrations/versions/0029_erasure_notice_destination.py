"""an erasure notice per CRM destination: the one its customer's offer events were queued for

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05 23:00:00

A notice named no destination, and every router told each one it had, so a CRM e-mail configured after the
erasure learned of a customer it never received. A notice waiting at the upgrade is kept for the webhook and
the e-mail both (what it meant before); the downgrade keeps one per erasure.
"""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

_ONE_PER_RECEIPT = "uq_erasure_notices_receipt_id"
_ONE_PER_DESTINATION = "uq_erasure_notices_receipt_id_destination"


def upgrade() -> None:
    with op.batch_alter_table("erasure_notices") as batch:
        batch.add_column(sa.Column("destination", sa.String(32), nullable=False, server_default="webhook"))
        batch.drop_constraint(_ONE_PER_RECEIPT, type_="unique")
        batch.create_unique_constraint(_ONE_PER_DESTINATION, ["receipt_id", "destination"])
    op.execute(
        "INSERT INTO erasure_notices (receipt_id, destination, customer_id, tenant, at) "
        "SELECT receipt_id, 'email', customer_id, tenant, at FROM erasure_notices"
    )
    with op.batch_alter_table("erasure_notices") as batch:
        batch.alter_column("destination", existing_type=sa.String(32), server_default=None)


def downgrade() -> None:
    op.execute(
        "DELETE FROM erasure_notices WHERE id NOT IN "
        "(SELECT min(id) FROM erasure_notices GROUP BY receipt_id)"
    )
    with op.batch_alter_table("erasure_notices") as batch:
        batch.drop_constraint(_ONE_PER_DESTINATION, type_="unique")
        batch.create_unique_constraint(_ONE_PER_RECEIPT, ["receipt_id"])
        batch.drop_column("destination")
