"""Migration 0033: identical subscriptions stored before are merged into the oldest, then a unique index keeps
one in force; the downgrade drops the index and nothing else."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from fleet import migrate
from fleet.db import make_engine, session
from fleet.tables import Customer, NotificationSubscription, User, utcnow

MAIL, HOOK = "tech@oem.example", "https://hooks.example/services/T0/B0/abc"


def _subscriptions(engine) -> dict[int, tuple]:
    with session(engine) as sess:
        subs = sess.scalars(select(NotificationSubscription)).all()
        return {s.id: (s.user_id, s.channel, s.address, s.customer_id, s.min_severity) for s in subs}


def _add(engine, **fields) -> None:
    with session(engine) as sess:
        sess.add(NotificationSubscription(**fields))


def test_migration_0033_merges_identical_subscriptions_into_the_oldest_and_refuses_a_new_copy(database_url):
    """Before: no revision 0033, and a copy of a subscription in force was stored."""
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine, "0032")
        with session(engine) as sess:
            acme = Customer(tenant="acme", name="Acme")
            tech, other = User(name="tech", role="field_service"), User(name="ann", role="field_service")
            sess.add_all([acme, tech, other])
            sess.flush()
            ids = {"tech": tech.id, "other": other.id, "acme": acme.id}
        mine = {"user_id": ids["tech"], "min_severity": "critical"}
        rows = [
            mine | {"channel": "email", "address": MAIL.title()},  # kept: the oldest of three
            mine | {"channel": "email", "address": MAIL},  # merged: the same mailbox
            mine | {"channel": "webhook", "address": HOOK},  # kept
            mine | {"channel": "webhook", "address": HOOK},  # merged
            mine | {"channel": "webhook", "address": HOOK.upper()},  # kept: a URL's path is case-sensitive
            mine | {"channel": "email", "address": MAIL, "min_severity": "high"},  # kept: another severity
            mine | {"channel": "email", "address": MAIL, "disabled_at": utcnow()},  # kept: not in force
            mine | {"channel": "email", "address": MAIL, "customer_id": ids["acme"]},  # kept: another scope
            mine | {"channel": "email", "address": MAIL.upper(), "customer_id": ids["acme"]},  # merged
            mine | {"channel": "email", "address": MAIL.upper()},  # merged: a third copy
            mine | {"user_id": ids["other"], "channel": "email", "address": MAIL},  # kept: another person
        ]
        for row in rows:
            _add(engine, **row)
        before = _subscriptions(engine)
        first = min(before)
        merged = {first + 1, first + 3, first + 8, first + 9}

        migrate.upgrade(engine, "0033")

        assert _subscriptions(engine) == {k: v for k, v in before.items() if k not in merged}
        for copy in (rows[1], rows[3], rows[8]):
            with pytest.raises(IntegrityError):
                _add(engine, **copy)
        _add(engine, **rows[6])  # a disabled copy is not in force: allowed

        kept = _subscriptions(engine)
        migrate.downgrade(engine, "0032")

        assert _subscriptions(engine) == kept
        _add(engine, **rows[1])  # the index is gone
    finally:
        engine.dispose()
