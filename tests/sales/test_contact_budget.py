"""The contact budget holds at the moment of contact: checked when an offer is proposed and again when
the account manager approves it, counting offers sent or about to be sent and technicians' visits."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from api import alerts, contacts, events, offer_lifecycle, offers, policy, routing, silence
from api.app import API_PREFIX, create_app
from api.auth import Principal
from api.errors import Conflict
from fleet import telemetry
from fleet.db import session
from fleet.tables import Alert, Offer, OutboxMessage, utcnow
from tests import services
from tests.api.routing_support import SECRET, SmtpSink, WebhookReceiver
from tests.api.support import NOW, World, add_prediction, build_world
from tests.console.client import ConsoleClient, flash, sign_in

LIMIT_TEXT = (
    "contact limit: 3 contacts (offers sent or about to be, field visits) with this account in 7 days"
)


def _manager(world: World) -> Principal:
    acme = world.customers["acme"]
    return Principal(world.users["am-acme"], "am-acme", "account_manager", frozenset({acme}))


def _plant_contacts(world: World, *, at: datetime, visit: bool = True) -> None:
    """Acme's contacts this week: an offer delivered 3 days before `at` and, with `visit`, a visit 1 day
    before (the critical alert on its first machine, acknowledged and resolved by the technician)."""
    acme = world.customers["acme"]
    with session(world.engine) as sess:
        sess.add(
            OutboxMessage(
                event_id="offer-900-approved",  # an offer of last week, delivered to the CRM
                event_type=events.OFFER_APPROVED,
                destination="webhook",
                customer_id=acme,
                payload={},
                status="delivered",
                delivered_at=at - timedelta(days=3),
            )
        )
    if visit:
        _visit(world, at=at - timedelta(days=1))


def _visit(world: World, *, at: datetime) -> None:
    tech = Principal(world.users["tech"], "tech", "field_service", None)
    with session(world.engine) as sess:
        alert = sess.scalars(select(Alert).where(Alert.id == world.alerts["acme"][0])).one()
        alerts.acknowledge(sess, alert, tech, at - timedelta(hours=1))
        alerts.resolve(sess, alert, finding="confirmed_fault", text=None, parts_used=[], by=tech, now=at)


def _propose_for_three_machines(world: World) -> list[int]:
    """Acme's proposals: the world's offer on machine 1, and one more on machine 1 and on machine 2."""
    machines = world.machines["acme"]
    add_prediction(world.engine, machines[1], risk=0.65, mode="overheating", hours_ahead=240)
    add_prediction(world.engine, machines[2], risk=0.75, mode="bearing_wear", hours_ahead=240)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    with session(world.engine) as sess:
        query = select(Offer.id).where(
            Offer.customer_id == world.customers["acme"], Offer.status == "proposed"
        )
        return list(sess.scalars(query.order_by(Offer.id)))


def _approve(world: World, offer_id: int, *, now: datetime = NOW) -> None:
    with session(world.engine) as sess:
        offer = sess.get_one(Offer, offer_id)
        offers.approve(sess, offer, by=_manager(world), now=now, settings=world.settings)


def _statuses(engine: Engine, ids: list[int]) -> list[str]:
    with session(engine) as sess:
        found = dict(sess.execute(select(Offer.id, Offer.status).where(Offer.id.in_(ids))).all())
    return [found[i] for i in ids]


def _approval_rows(engine: Engine, status: str) -> int:
    """Outbox rows of approvals made in the test (the planted contacts have no offer)."""
    with session(engine) as sess:
        where = (
            OutboxMessage.event_type == events.OFFER_APPROVED,
            OutboxMessage.status == status,
            OutboxMessage.offer_id.is_not(None),
        )
        return sess.scalar(select(func.count()).select_from(OutboxMessage).where(*where))


def _link_drops(world: World, machine_id: int, *, at: datetime, seq: int) -> None:
    """The machine sends every minute until `at`, is silent for an hour, then sends again: the policy opens
    a "no data" alert and resolves it itself when the data returns."""
    rows = [(seq + i, at - timedelta(minutes=3 - i)) for i in range(3)] + [(seq + 3, at + timedelta(hours=1))]
    customer_id = world.customers["acme"]
    quiet = timedelta(minutes=30)
    for n, (number, arrived) in enumerate(rows):
        if n == 3:
            with session(world.engine) as sess:
                assert silence.sweep(sess, now=at + timedelta(minutes=45), silent_after=quiet) == (1, 0)
        with world.engine.begin() as conn:
            row = {"customer_id": customer_id, "machine_id": machine_id, "seq": number, "readings": {}}
            telemetry.insert_telemetry(conn, [row | {"ts": arrived, "received_at": arrived}])
    with session(world.engine) as sess:
        assert silence.sweep(sess, now=at + timedelta(minutes=61), silent_after=quiet) == (0, 1)


def test_no_data_alerts_the_policy_resolved_itself_are_no_visits(database_url) -> None:
    world = build_world(database_url)
    acme = world.customers["acme"]
    for day in (3, 2, 1):  # the site's link dropped for an hour on three days; nobody went there
        _link_drops(world, world.machines["acme"][2], at=NOW - timedelta(days=day), seq=10 * day)

    with session(world.engine) as sess:
        assert contacts.recent_contacts(sess, acme, NOW) == 0
        assert contacts.last_contact(sess, acme) is None
    _approve(world, world.offers["acme"][0])  # not refused by a contact limit nobody used
    assert _statuses(world.engine, world.offers["acme"][:1]) == ["approved"]


def test_three_proposals_with_two_contacts_this_week_one_approval_passes(database_url) -> None:
    world = build_world(database_url, webhook_url="http://127.0.0.1:9/hook")
    _plant_contacts(world, at=NOW)
    proposed = _propose_for_three_machines(world)
    assert len(proposed) == 3, "proposals do not use the budget: each saw 2 contacts"
    with session(world.engine) as sess:
        assert contacts.recent_contacts(sess, world.customers["acme"], NOW) == 2
    _approve(world, proposed[0])
    for offer_id in proposed[1:]:
        with pytest.raises(Conflict) as refused:
            _approve(world, offer_id)
        assert str(refused.value) == (
            f"cannot approve offer {offer_id}: {LIMIT_TEXT}, at most 3;"
            f" the next frees on {NOW + timedelta(days=4):%Y-%m-%d %H:%M} UTC"  # 3 days ago + 7
        )
    assert _statuses(world.engine, proposed) == ["approved", "proposed", "proposed"]
    assert _approval_rows(world.engine, "pending") == 1
    with session(world.engine) as sess:
        acme = world.customers["acme"]
        assert contacts.recent_contacts(sess, acme, NOW) == 2, "the pending one is not sent yet"
        assert contacts.recent_contacts(sess, acme, NOW, pending=True) == 3
    # Once the delivered offer of last week leaves the 7 days, the next approval passes.
    _approve(world, proposed[1], now=NOW + timedelta(days=4, minutes=1))
    assert _statuses(world.engine, proposed) == ["approved", "approved", "proposed"]


def test_a_visit_recorded_after_the_proposal_blocks_the_approval(database_url) -> None:
    world = build_world(database_url, webhook_url="http://127.0.0.1:9/hook")
    _plant_contacts(world, at=NOW, visit=False)
    (offer_id,) = world.offers["acme"]
    with session(world.engine) as sess:
        assert contacts.recent_contacts(sess, world.customers["acme"], NOW) == 1
    # A second delivered offer, then the technician's visit, both after the offer was proposed.
    with session(world.engine) as sess:
        sess.add(
            OutboxMessage(
                event_id="offer-901-approved",
                event_type=events.OFFER_APPROVED,
                destination="webhook",
                customer_id=world.customers["acme"],
                payload={},
                status="delivered",
                delivered_at=NOW - timedelta(hours=2),
            )
        )
    _visit(world, at=NOW - timedelta(hours=1))
    with pytest.raises(Conflict, match="contact limit: 3 contacts"):
        _approve(world, offer_id)
    assert _statuses(world.engine, [offer_id]) == ["proposed"]
    assert _approval_rows(world.engine, "pending") == 0


@pytest.mark.expect_logged_errors  # the dead letter is logged as an error
@pytest.mark.parametrize("fate", ["delivered", "dead", "cancelled"])
def test_an_approval_that_never_reaches_the_customer_frees_its_slot(database_url, fate) -> None:
    recv = WebhookReceiver(fail_first=1 if fate == "dead" else 0).start()
    try:
        world = build_world(database_url, webhook_url=recv.url, webhook_secret=SECRET, route_max_attempts=1)
        _plant_contacts(world, at=NOW)
        first, second, _ = _propose_for_three_machines(world)
        _approve(world, first)
        with pytest.raises(Conflict, match="contact limit"):
            _approve(world, second)
        if fate == "cancelled":  # withdrawn after approval: the router cancels its delivery
            with session(world.engine) as sess:
                offer = sess.get_one(Offer, first)
                offer_lifecycle.withdraw(sess, offer, why="test", now=NOW, settings=world.settings)
        report = routing.deliver_due(engine=world.engine, settings=world.settings)
        assert getattr(report, fate) == 1
        assert _approval_rows(world.engine, fate) == 1
        if fate == "delivered":  # it reached the customer: a contact, the slot stays taken
            with pytest.raises(Conflict, match="contact limit"):
                _approve(world, second)
            assert _statuses(world.engine, [first, second]) == ["sent", "proposed"]
        else:
            _approve(world, second)
            assert _statuses(world.engine, [second]) == ["approved"]
    finally:
        recv.stop()


@pytest.mark.expect_logged_errors  # the dead letter and the held CRM are logged as errors
@pytest.mark.parametrize("crm", ["refused", "gone"])
def test_an_approval_e_mailed_but_not_taken_by_the_crm_is_no_sent_contact(database_url, crm) -> None:
    """E-mail beside the webhook: the approval is sent when the CRM has it (the offer's `sent`), not when its
    e-mail copy went out; refused by the CRM it frees its slot, held for it, it is still about to be sent."""
    recv = WebhookReceiver(fail_first=10, fail_status=422 if crm == "refused" else 410).start()
    sink = SmtpSink()
    sink.controller.start()
    try:
        world = build_world(
            database_url,
            webhook_url=recv.url,
            webhook_secret=SECRET,
            smtp_url=sink.url,
            mail_to="crm-gateway@oem.example",
            route_max_attempts=1,
        )
        _plant_contacts(world, at=NOW)
        first, second, _ = _propose_for_three_machines(world)
        _approve(world, first)
        routing.deliver_due(engine=world.engine, settings=world.settings)
        assert len(sink.messages) == 1 and _statuses(world.engine, [first]) == ["approved"]
        with session(world.engine) as sess:
            counted = contacts.contact_times(sess, world.customers["acme"], NOW, pending=True)
            last = contacts.last_contact(sess, world.customers["acme"])
        planted = [NOW - timedelta(days=3), NOW - timedelta(days=1)]
        assert counted == (planted if crm == "refused" else [*planted, None])
        assert last == planted[-1]
        if crm == "refused":
            _approve(world, second)
            assert _statuses(world.engine, [second]) == ["approved"]
        else:
            with pytest.raises(Conflict, match="contact limit: 3 contacts"):
                _approve(world, second)
    finally:
        sink.controller.stop()
        recv.stop()


def test_over_http_the_second_approval_answers_409_and_the_offer_stays_proposed(database_url) -> None:
    world = build_world(database_url, webhook_url="http://127.0.0.1:9/hook")
    now = utcnow()  # the route approves at the code's clock
    _plant_contacts(world, at=now)
    first, second, _ = _propose_for_three_machines(world)
    am = world.headers("am-acme")
    with world.client() as client:
        assert client.post(f"{API_PREFIX}/offers/{first}/approve", json={}, headers=am).status_code == 200
        refused = client.post(f"{API_PREFIX}/offers/{second}/approve", json={"price": 400}, headers=am)
        assert refused.status_code == 409
        body = refused.json()
        assert body["error"] == "conflict"
        assert body["detail"].startswith(f"cannot approve offer {second}: {LIMIT_TEXT}, at most 3")
        frees = (now - timedelta(days=3) + timedelta(days=7)).strftime("%Y-%m-%d %H:%M")
        assert body["detail"].endswith(f"the next frees on {frees} UTC")
        again = client.get(f"{API_PREFIX}/offers/{second}", headers=am).json()
        assert again["status"] == "proposed" and again["price"] != 400
    # The console refuses the same way, with the message on the offer's page.
    with ConsoleClient(create_app(world.settings)) as console:
        sign_in(console, world, "am-acme")
        page = f"/offers/{second}"
        shown = console.post(f"{page}/approve", data={}, headers={"referer": f"http://testserver{page}"})
        assert shown.status_code == 409, shown.text  # answered on the offer's page, its form kept
        assert flash(shown.text) == body["detail"]
    assert _statuses(world.engine, [first, second]) == ["approved", "proposed"]


@pytest.mark.postgres
def test_two_approvals_at_once_for_one_account_count_each_other_on_postgres(postgres_url) -> None:
    # PostgreSQL only: on SQLite the API's write transactions begin IMMEDIATE, one at a time.
    world = build_world(postgres_url, webhook_url="http://127.0.0.1:9/hook")
    _plant_contacts(world, at=NOW)
    first, second, _ = _propose_for_three_machines(world)
    outcome: list[str] = []

    def approve_second() -> None:
        try:
            _approve(world, second)
            outcome.append("approved")
        except Conflict as exc:
            outcome.append(str(exc))

    with session(world.engine) as sess:
        offers.approve(sess, sess.get_one(Offer, first), by=_manager(world), now=NOW, settings=world.settings)
        other = threading.Thread(target=approve_second)
        other.start()  # it waits for the customer's row until this approval commits
        while other.is_alive() and not services.waiting_on_lock(world.engine, "transactionid", "tuple"):
            other.join(0.05)
    other.join()
    assert len(outcome) == 1 and outcome[0].startswith(f"cannot approve offer {second}: {LIMIT_TEXT}")
    assert _statuses(world.engine, [first, second]) == ["approved", "proposed"]
