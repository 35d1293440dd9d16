"""An e-mail address is one recipient whatever the case of its letters, non-ASCII ones too, on SQLite as on
PostgreSQL: it is stored in lower case (Python's, the same on both) and compared so. SQL lower() folded ASCII
only on SQLite (and on a PostgreSQL database with the C locale), so `Änne@…` and `änne@…` were two
subscriptions there and one elsewhere."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from api.app import API_PREFIX
from fleet import migrate
from fleet.db import make_engine, session
from fleet.tables import Customer, NotificationSubscription, User, subscription_address, utcnow
from tests.api.support import build_world

SUBSCRIBE = f"{API_PREFIX}/notifications/subscriptions"


def test_an_address_that_differs_only_in_the_case_of_a_non_ascii_letter_is_the_same_subscription(
    database_url,
):
    """Before, on SQLite: the second request stored a second subscription (201)."""
    world = build_world(database_url)
    body = {"customer_id": world.customers["acme"], "channel": "email", "min_severity": "high"}
    with world.client() as client:
        first = client.post(
            SUBSCRIBE, json=body | {"address": "Änne.Ölsen@OEM.example"}, headers=world.headers("tech")
        )
        again = client.post(
            SUBSCRIBE, json=body | {"address": "änne.ölsen@oem.example"}, headers=world.headers("tech")
        )
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["address"] == "änne.ölsen@oem.example"
    with session(world.engine) as sess:
        assert sess.scalars(select(NotificationSubscription.address)).all() == ["änne.ölsen@oem.example"]


def test_an_address_too_long_once_lowered_is_refused(database_url):
    world = build_world(database_url)
    long = "İ" * 300 + "@oem.example"  # 312 characters; lowered, each İ is an i and a combining dot
    body = {"customer_id": world.customers["acme"], "channel": "email", "address": long}
    with world.client() as client:
        answer = client.post(SUBSCRIBE, json=body, headers=world.headers("tech"))
    assert answer.status_code == 422 and "longer than 320 characters in lower case" in answer.text


def test_the_one_function_lowers_an_email_address_and_keeps_a_webhook_url():
    assert subscription_address("email", "ÄNNE@Oem.Example") == "änne@oem.example"
    url = "https://hooks.example/services/T0/B0/AbC"  # a URL's path is case-sensitive
    assert subscription_address("webhook", url) == url


def test_migration_0035_lowers_stored_addresses_and_merges_the_copies_that_makes(database_url):
    """Before: no revision 0035; SQLite held `Änne@…` and `änne@…` as two subscriptions in force."""
    engine = make_engine(database_url)
    table = NotificationSubscription.__table__
    try:
        migrate.upgrade(engine, "0034")
        with session(engine) as sess:
            acme = Customer(tenant="acme", name="Acme")
            tech = User(name="tech", role="field_service")
            sess.add_all([acme, tech])
            sess.flush()
            mine = {"user_id": tech.id, "min_severity": "critical", "channel": "email"}
        rows = [
            mine | {"address": "Änne@OEM.example"},  # kept: the oldest
            mine | {"address": "ÄNNE@oem.example", "disabled_at": utcnow()},  # kept: not in force
            mine | {"address": "Änne@OEM.example", "min_severity": "high"},  # kept: another severity
            mine | {"channel": "webhook", "address": "https://hooks.example/Änne"},  # kept as it is
            mine | {"address": "änne@oem.example"},  # merged into the first (SQLite only could store it)
        ]
        stored = []
        for row in rows:  # as rows were written before: not through the ORM, which lowers them now
            try:
                with engine.begin() as conn:
                    stored.append(
                        conn.execute(insert(table).values(**row).returning(table.c.id)).scalar_one()
                    )
            except IntegrityError:  # PostgreSQL's lower() folds Ä in the test database: one already
                assert engine.dialect.name == "postgresql" and row is rows[-1]

        migrate.upgrade(engine, "0035")

        with engine.connect() as conn:
            found = dict(conn.execute(select(table.c.id, table.c.address)).all())
        lower = "änne@oem.example"
        assert found == dict(
            zip(stored[:4], [lower, lower, lower, "https://hooks.example/Änne"], strict=True)
        )
        with pytest.raises(IntegrityError), session(engine) as sess:
            sess.add(NotificationSubscription(**mine | {"address": "ÄNNE@OEM.EXAMPLE"}))

        migrate.downgrade(engine, "0034")
        with engine.connect() as conn:
            assert dict(conn.execute(select(table.c.id, table.c.address)).all()) == found
    finally:
        engine.dispose()
