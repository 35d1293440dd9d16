"""A policy batch beside requests that change what it locked (PostgreSQL: rows are locked, not the database).

The batch locks its machines' open offers when it reads them; a request that waits for one of those locks
then goes on with the store the batch committed, not with what it read before it waited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import event, select, text

from api import policy
from api.app import API_PREFIX, create_app
from api.offer_book import OPEN
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


def _pass_with_a_request_after_its_offers_read(
    world: World, send: Callable[[httpx.Client], httpx.Response], *, before: str = "FOR UPDATE OF alerts"
) -> policy.PolicyReport:
    """A policy pass that, right after its batch read (and locked) the open offers, has the request sent over
    HTTP and goes on once the request waits for a lock or is done; the request must succeed. `before`: the
    statement the request is sent before (default: the batch's alert read, right after its offers read)."""
    answers: list[httpx.Response] = []
    with served(create_app(world.settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        assert client.get(f"{API_PREFIX}/me", headers=world.headers("admin")).is_success  # the app warmed
        request = threading.Thread(target=lambda: answers.append(send(client)))

        def send_after_the_offers_read(conn, cursor, statement, *args) -> None:  # noqa: ANN001
            if before in statement and not request.is_alive() and not answers:
                request.start()
                _wait_for_a_lock_wait(world, request)

        event.listen(world.engine, "before_cursor_execute", send_after_the_offers_read)
        try:
            report = policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
        finally:
            event.remove(world.engine, "before_cursor_execute", send_after_the_offers_read)
        request.join(timeout=60)
    assert [r.status_code for r in answers] == [200], [r.text for r in answers]
    return report


def test_consent_revoked_while_a_batch_holds_the_customers_offers_leaves_no_open_offer(world: World) -> None:
    """Revoking `offers` withdraws every open offer of the customer, those the batch proposes meanwhile too.

    acme's machine 1 has an offer the batch locks; the revocation arrives after that read and waits for it,
    while the batch proposes an offer for acme's machine 2 (it read the grant before the revocation's commit).
    """
    acme, machines = world.customers["acme"], world.machines["acme"]
    add_prediction(world.engine, machines[1], risk=0.8, hours_ahead=240)  # its offer, locked by the batch
    add_prediction(world.engine, machines[2], risk=0.8, hours_ahead=240)  # a new offer
    url = f"{API_PREFIX}/customers/{acme}/grants/offers"
    report = _pass_with_a_request_after_its_offers_read(
        world, lambda client: client.delete(url, headers=world.headers("admin"))
    )
    assert report.offers_proposed >= 1  # the batch read the grant before the revocation committed
    with session(world.engine) as sess:
        still = sess.execute(
            select(Offer.id, Offer.machine_id, Offer.status).where(
                Offer.customer_id == acme, Offer.status.in_(("proposed", "approved", "sent"))
            )
        ).all()
    assert still == []


def test_an_approval_while_a_batch_rewrites_the_offers_text_keeps_the_managers_edit(world: World) -> None:
    """The batch gives a proposed offer its machine's newest estimate (its text); an approval with an edited
    text that arrives after the batch read the offer waits for it, and the approved offer keeps the edit."""
    offer_id = world.offers["acme"][0]
    add_prediction(world.engine, world.machines["acme"][1], risk=0.8, hours_ahead=200)  # a new text
    url, edit = f"{API_PREFIX}/offers/{offer_id}/approve", {"reason": "Agreed by phone: the seal kit."}
    report = _pass_with_a_request_after_its_offers_read(
        world, lambda client: client.post(url, json=edit, headers=world.headers("am-acme"))
    )
    assert report.alerts_opened_or_updated == 1
    with session(world.engine) as sess:
        offer = sess.get(Offer, offer_id)
        assert (offer.status, offer.reason) == ("approved", edit["reason"])


def test_consent_revoked_between_the_batchs_grant_read_and_its_offer_leaves_no_open_offer(
    world: World,
) -> None:
    """The revocation commits after the batch read the grant and before it inserts the offer, waiting for no
    lock (the batch holds none of acme's offers): the pass's sweep withdraws the offer made on that grant."""
    acme, machines = world.customers["acme"], world.machines["acme"]
    add_prediction(world.engine, machines[2], risk=0.8, hours_ahead=240)  # a new offer
    url = f"{API_PREFIX}/customers/{acme}/grants/offers"
    report = _pass_with_a_request_after_its_offers_read(
        world, lambda client: client.delete(url, headers=world.headers("admin")), before="INSERT INTO offers"
    )
    assert report.offers_proposed == 1  # on the grant the batch read before the revocation committed
    with session(world.engine) as sess:
        made = sess.scalars(select(Offer.status).where(Offer.machine_id == machines[2])).all()
        still = sess.scalars(select(Offer.id).where(Offer.customer_id == acme, Offer.status.in_(OPEN))).all()
    assert (made, still) == (["withdrawn"], [])
