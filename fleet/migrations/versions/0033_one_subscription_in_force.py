"""one notification subscription in force per person, channel, address, scope and severity

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06 13:30:00

Since 086975d the API answers a subscription the caller has already with that one, but two identical
requests at once could both find none and both store one. A unique index over the subscriptions in force
(not disabled) now refuses the second: user, channel, address (an e-mail address in lower case), customer,
site (none is 0) and minimum severity. The upgrade first merges the identical subscriptions stored before:
of each group the oldest (lowest id) stays, the others are deleted (their pending notifications are cancelled
when the router meets them; the oldest has its own row of each event since 086975d). The downgrade drops the
index only: the merged rows were copies of the one kept, and putting them back would send twice again.
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
INDEX = "uq_notification_subscriptions_in_force"
TABLE = "notification_subscriptions"
# fleet.tables.sales.subscription_address_key when written
_ADDRESS = "(CASE WHEN {t}channel = 'email' THEN lower({t}address) ELSE {t}address END)"
# {t} is the table's name and a dot, or nothing in the index itself
_KEY = (
    "{t}user_id",
    "{t}channel",
    _ADDRESS,
    "coalesce({t}customer_id, 0)",
    "coalesce({t}site_id, 0)",
    "{t}min_severity",
)
_IN_FORCE = "disabled_at IS NULL"


def upgrade() -> None:
    same = " AND ".join(f"{k.format(t='kept.')} = {k.format(t=TABLE + '.')}" for k in _KEY)
    merged = op.get_bind().execute(
        sa.text(
            f"DELETE FROM {TABLE} WHERE {TABLE}.{_IN_FORCE} AND EXISTS (SELECT 1 FROM {TABLE} AS kept "
            f"WHERE kept.{_IN_FORCE} AND kept.id < {TABLE}.id AND {same})"
        )
    )
    if merged.rowcount:
        log.info("merged %d notification subscription(s) into an identical older one", merged.rowcount)
    op.create_index(
        INDEX,
        TABLE,
        [sa.text(k.format(t="")) for k in _KEY],
        unique=True,
        sqlite_where=sa.text(_IN_FORCE),
        postgresql_where=sa.text(_IN_FORCE),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
