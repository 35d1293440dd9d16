"""A policy batch beside requests that change what it locked (PostgreSQL: rows are locked, not the database).

The batch locks its machines' open offers when it reads them; a request that waits for one of those locks
then goes on with the store the batch committed, not with what it read before it waited.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from sqlalchemy import event, select, text

from api import policy
from api.app import API_PREFIX, create_app
from fleet.db import session
from fleet.tables import Offer
from tests.api.support import NOW, World, add_prediction, build_world, served


@pytest.fixture
def world(postgres_url: str) -> World:
    return build_world(postgres_url)


def _wait_for_a_lock_wait(world: World, request: threading.Thread) -> None:
    """Until the request waits for a row lock (or is done: then it never had to)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with world.engine.connect() as watcher:
        for _ in range(600):
            if not request.is_alive() or watcher.execute(waiting).scalar():
                return
            watcher.rollback()  # the statistics are a snapshot per transaction
            time.sleep(0.05)
    pytest.fail("the revocation neither finished nor waited for a lock")


def test_consent_revoked_while_a_batch_holds_the_customers_offers_leaves_no_open_offer(world: World) -> None:
    """Revoking `offers` withdraws every open offer of the customer, those the batch proposes meanwhile too.

    acme's machine 1 has an offer the batch locks; the revocation arrives after that read and waits for it,
    while the batch proposes an offer for acme's machine 2 (it read the grant before the revocation's commit).
    """
    acme, machines = world.customers["acme"], world.machines["acme"]
    add_prediction(world.engine, machines[1], risk=0.8, hours_ahead=240)  # its offer, locked by the batch
    add_prediction(world.engine, machines[2], risk=0.8, hours_ahead=240)  # a new offer
    answers: list[httpx.Response] = []
    with served(create_app(world.settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        url = f"{API_PREFIX}/customers/{acme}/grants/offers"
        assert client.get(f"{API_PREFIX}/me", headers=world.headers("admin")).is_success  # the key cached
        revocation = threading.Thread(
            target=lambda: answers.append(client.delete(url, headers=world.headers("admin")))
        )

        def revoke_after_the_offers_read(conn, cursor, statement, *args) -> None:  # noqa: ANN001
            # The batch's alert read comes right after its locked read of the open offers.
            if "FOR UPDATE OF alerts" in statement and not revocation.is_alive() and not answers:
                revocation.start()
                _wait_for_a_lock_wait(world, revocation)

        event.listen(world.engine, "before_cursor_execute", revoke_after_the_offers_read)
        try:
            report = policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
        finally:
            event.remove(world.engine, "before_cursor_execute", revoke_after_the_offers_read)
        revocation.join(timeout=60)
    assert [r.status_code for r in answers] == [200], [r.text for r in answers]
    assert report.offers_proposed >= 1  # the batch read the grant before the revocation committed
    with session(world.engine) as sess:
        still = sess.execute(
            select(Offer.id, Offer.machine_id, Offer.status).where(
                Offer.customer_id == acme, Offer.status.in_(("proposed", "approved", "sent"))
            )
        ).all()
    assert still == []
