"""e-mail subscription addresses stored in lower case, compared as stored

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07 00:00:00

Until now the unique index of the subscriptions in force compared an e-mail address by SQL lower(), which
folds ASCII only on SQLite (and on PostgreSQL under the C locale): `Änne@oem.example` and `änne@oem.example`
were two subscriptions there and one elsewhere. Addresses are now lowered in Python when written
(fleet.tables.sales.subscription_address) and the index compares them as stored. The upgrade lowers the stored
e-mail addresses; of the subscriptions in force that this makes identical the oldest (lowest id) stays and the
others are deleted, as 0033 did (they were copies: the router sent each event to their address once). The
downgrade puts 0033's index back; the addresses stay in lower case (their former case is not kept).
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
INDEX = "uq_notification_subscriptions_in_force"
TABLE = "notification_subscriptions"
_IN_FORCE = "disabled_at IS NULL"
_SCOPE = ("coalesce(customer_id, 0)", "coalesce(site_id, 0)", "min_severity")
_BEFORE = (
    "user_id",
    "channel",
    "(CASE WHEN channel = 'email' THEN lower(address) ELSE address END)",
    *_SCOPE,
)
_NOW = ("user_id", "channel", "address", *_SCOPE)


def _lowered(address: str) -> str:
    """fleet.tables.sales.subscription_address of an e-mail address when written."""
    return address.lower()


def _index(columns: tuple[str, ...]) -> None:
    op.create_index(
        INDEX,
        TABLE,
        [sa.text(c) for c in columns],
        unique=True,
        sqlite_where=sa.text(_IN_FORCE),
        postgresql_where=sa.text(_IN_FORCE),
    )


def upgrade() -> None:
    bind = op.get_bind()
    op.drop_index(INDEX, table_name=TABLE)
    rows = bind.execute(
        sa.text(
            f"SELECT id, user_id, address, coalesce(customer_id, 0), coalesce(site_id, 0), min_severity, "
            f"{_IN_FORCE} FROM {TABLE} WHERE channel = 'email' ORDER BY id"
        )
    ).all()
    kept: set[tuple] = set()
    merged, lowered = [], []
    for sub_id, user_id, address, customer, site, severity, in_force in rows:
        key = (user_id, _lowered(address), customer, site, severity)
        if in_force and key in kept:
            merged.append(sub_id)
            continue
        if in_force:
            kept.add(key)
        # An address that grows past the column once lowered (İ is two characters then) stays as it was.
        if address != _lowered(address) and len(_lowered(address)) <= 500:
            lowered.append({"id": sub_id, "address": _lowered(address)})
    if merged:
        bind.execute(
            sa.text(f"DELETE FROM {TABLE} WHERE id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": merged},
        )
        log.info("merged %d notification subscription(s) into an identical older one", len(merged))
    if lowered:
        bind.execute(sa.text(f"UPDATE {TABLE} SET address = :address WHERE id = :id"), lowered)
    _index(_NOW)


def downgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
    _index(_BEFORE)
