"""An e-mail address migration 0035 left as it was (too long once lowered) stays writable: its row changes."""

from __future__ import annotations

from sqlalchemy import insert, select

from fleet.db import session
from fleet.tables import NotificationSubscription, User, utcnow

# 492 characters; 502 once lowered (İ lowers to two), past the column's 500: 0035 kept it as it was.
LONG = "İ" * 10 + "x" * 470 + "@oem.example"


def test_a_subscription_whose_address_0035_kept_can_be_unsubscribed(engine):
    # Before: the ORM's before_update hook lowered the address on every update of the row, so unsubscribing
    # (disabled_at) wrote 502 characters: PostgreSQL refused it (value too long for type character
    # varying(500)), SQLite stored the longer address.
    table = NotificationSubscription.__table__
    with session(engine) as sess:
        tech = User(name="tech", role="field_service")
        sess.add(tech)
        sess.flush()
        tech_id = tech.id
    row = {"user_id": tech_id, "min_severity": "critical", "channel": "email", "address": LONG}
    with engine.begin() as conn:  # as 0035 left it: not through the ORM, which lowers what it writes
        kept = conn.execute(insert(table).values(**row).returning(table.c.id)).scalar_one()
        mixed = conn.execute(
            insert(table).values(**row | {"address": "Änne@OEM.example"})
        ).inserted_primary_key
    with session(engine) as sess:
        sess.get(NotificationSubscription, kept).disabled_at = utcnow()
        sess.get(NotificationSubscription, mixed[0]).address = "Bob@OEM.example"  # a new address: lowered
    with engine.connect() as conn:
        stored = dict(conn.execute(select(table.c.id, table.c.address)).all())
        disabled = conn.scalar(select(table.c.disabled_at).where(table.c.id == kept))
    assert disabled is not None
    assert stored == {kept: LONG, mixed[0]: "bob@oem.example"}
