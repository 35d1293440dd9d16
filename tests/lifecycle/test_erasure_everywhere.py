"""Erasing a customer with data in every place: no table of the database (all of them, as the database lists
them) and no archive file keeps its ids, codes, names, serials, sites or the words people wrote about it."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import insert, inspect, literal_column, select, table, update

from api import policy, routing
from api.app import API_PREFIX
from api.delivery import signed_headers
from fleet import archive, erasure, events_store, rollups, telemetry
from fleet.db import session
from fleet.tables import Customer, ErasureNotice, Machine, Offer, Site, utcnow
from tests.api.routing_support import SECRET, SmtpSink, WebhookReceiver
from tests.api.support import NOW, add_prediction, build_world
from tests.lifecycle import support

NAME = "Pumpwerke Brandt GmbH"  # the customer's company name
SERIAL = "SN-77-BRANDT-"  # its machines' serials: SN-77-BRANDT-0, -1, -2
SITE, PLACE = "Werk Sued Halle 4", "Industriestrasse 9, Ulm"
MARKER = 987654.321  # a reading only this customer sent
pytestmark = pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")  # a reflection it skips, say


def _signed_post(client, body: dict, webhook_id: str):  # noqa: ANN001
    text = json.dumps(body)
    headers = signed_headers(secret=SECRET, event_id=webhook_id, body=text, at=utcnow())
    return client.post(f"{API_PREFIX}/crm/outcomes", content=text.encode(), headers=headers)


def _named_and_placed(world) -> None:  # noqa: ANN001
    """acme gets a company name, a site with an address, serials on its machines."""
    acme = world.customers["acme"]
    with world.engine.begin() as conn:
        conn.execute(update(Customer).where(Customer.id == acme).values(name=NAME))
        site = conn.execute(
            insert(Site).values(customer_id=acme, name=SITE, location=PLACE).returning(Site.id)
        )
        site_id = site.scalar_one()
        for i, machine in enumerate(world.machines["acme"]):
            conn.execute(
                update(Machine).where(Machine.id == machine).values(serial=f"{SERIAL}{i}", site_id=site_id)
            )


def _people_wrote_about_it(world) -> None:  # noqa: ANN001
    """Consent with a reference, a finding, an edited approval, a lost deal's reason, a notification."""
    acme, alert, offer = world.customers["acme"], world.alerts["acme"][0], world.offers["acme"][0]
    admin, tech, am = world.headers("admin"), world.headers("tech"), world.headers("am-acme")
    with world.client() as client:
        grant = f"{API_PREFIX}/customers/{acme}/grants/product_improvement"
        assert client.put(grant, params={"reference": f"letter of {NAME}"}, headers=admin).status_code == 200
        mail = {"customer_id": acme, "channel": "email", "address": "tech@oem.example"}
        assert (
            client.post(f"{API_PREFIX}/notifications/subscriptions", json=mail, headers=tech).status_code
            == 201
        )
        assert client.post(f"{API_PREFIX}/alerts/{alert}/ack", headers=tech).status_code == 200
        finding = {"finding": "confirmed_fault", "text": f"seal of {SERIAL}0 at {SITE} leaked"}
        assert (
            client.post(f"{API_PREFIX}/alerts/{alert}/resolve", json=finding, headers=tech).status_code == 200
        )
        edits = {"title": f"Inspection for {NAME}", "reason": f"{SERIAL}1 at {PLACE} wears its bearing"}
        assert client.post(f"{API_PREFIX}/offers/{offer}/approve", json=edits, headers=am).status_code == 200
        with session(world.engine) as sess:
            sess.get(Offer, offer).status = "sent"
        date = f"{NOW + timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}"
        lost = {"offer_id": offer, "outcome": "lost", "reason": f"{NAME} chose a rival", "date": date}
        assert _signed_post(client, lost, "msg_everywhere").status_code == 200
    add_prediction(world.engine, world.machines["acme"][2], risk=0.92, mode="seal_leak", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())


def _stored_and_archived(world, url: str) -> None:  # noqa: ANN001
    """Telemetry (part archived, rolled up), an event and a quarantined message of each customer."""
    for n, tenant in enumerate(("acme", "globex")):
        customer, machine = world.customers[tenant], world.machines[tenant][0]
        rows = support.rows((customer, machine), seqs=range(0, 600), step_s=600.0, seed=n)
        if tenant == "acme":
            rows[5]["readings"]["temperature_c"] = MARKER
        support.write(world.engine, rows)
        event = {"code": "E42", "severity": "high", "text": f"{tenant} door open", "extra": {"by": tenant}}
        with world.engine.begin() as conn:
            at = support.START
            keys = {"customer_id": customer, "machine_id": machine, "seq": 1, "ts": at, "received_at": at}
            events_store.insert_events(conn, [{**keys, **event}])
            bad = f"fleet/{tenant}/{tenant}-pump-0/telemetry"
            telemetry.insert_quarantine(
                conn,
                [
                    {
                        "topic": bad,
                        "payload": b"{not json",
                        "reason": "bad_json",
                        "detail": "test",
                        "digest": hashlib.sha256(bad.encode()).hexdigest(),
                        "received_at": at,
                    }
                ],
            )
    rollups.refresh(world.engine, archive_url=url)
    archive.run(world.engine, url=url, before=support.START + timedelta(days=2))


def _needles(world) -> list[str]:  # noqa: ANN001
    return [NAME, SERIAL, SITE, PLACE, "acme-pump", "cust-acme", "acme door", '"acme"', str(MARKER)]


def _leaks(engine, needles: list[str], customer: int, machines: set[int]) -> list[str]:  # noqa: ANN001
    """Every row of every table the database holds that names the customer or carries its ids."""
    found = []
    with engine.connect() as conn:
        # The tables by the database's list, their rows as stored: no reflection of their columns and indexes,
        # which the rows do not need (and SQLite's skips an expression index with a warning).
        for name in inspect(conn).get_table_names():
            for row in conn.execute(select(literal_column("*")).select_from(table(name))).mappings():
                text = repr(dict(row))
                found += [f"{name}: {n!r} in {text[:200]}" for n in needles if n in text]
                if row.get("customer_id") == customer or row.get("machine_id") in machines:
                    found.append(f"{name}: the customer's ids in {text[:200]}")
    return found


def test_erasure_leaves_nothing_of_the_customer_in_any_table_or_file(database_url, tmp_path) -> None:
    url = str(tmp_path / "archive")
    crm, mail = WebhookReceiver().start(), SmtpSink()
    mail.controller.start()
    try:
        _erase_and_announce(database_url, url, crm, mail)
    finally:
        crm.stop()
        mail.controller.stop()


def _erase_and_announce(database_url: str, url: str, crm: WebhookReceiver, mail: SmtpSink) -> None:
    # The approval goes to the CRM by webhook and by e-mail.
    crm_link = {
        "webhook_url": crm.url,
        "webhook_secret": SECRET,
        "smtp_url": mail.url,
        "mail_to": "crm@oem.example",
    }
    world = build_world(database_url, crm_inbound_secret=SECRET, crm_replay_window_s=300, **crm_link)
    _named_and_placed(world)
    _people_wrote_about_it(world)
    _stored_and_archived(world, url)
    acme, machines = world.customers["acme"], set(world.machines["acme"])
    needles = _needles(world)
    assert _leaks(world.engine, needles, acme, machines)  # the search finds what is there

    receipt = erasure.erase(
        world.engine, tenant="acme", confirm="acme", by="cli:dpo", archive_url=url, now=utcnow()
    )

    assert receipt["counts"]["archive_files"] > 0 and receipt["counts"]["crm_outcomes"] == 1
    # The CRM had the offer by webhook and e-mail: until it is told of the erasure there, a notice per
    # destination keeps the ids it knows the account by.
    notices = _leaks(world.engine, needles, acme, machines)
    kept = f"{ErasureNotice.__tablename__}: the customer's ids"
    assert len(notices) == 2 and all(n.startswith(kept) for n in notices), notices
    assert routing.deliver_due(engine=world.engine, settings=world.settings).delivered == 2
    assert [e["type"] for e in crm.accepted.values()] == ["com.servicecast.customer.erased"]
    assert [m["X-Servicecast-Event-Id"] for m in mail.messages] == list(crm.accepted)
    assert _leaks(world.engine, needles, acme, machines) == []
    files = support.archived_files(url)
    assert files  # globex's
    for path in files:
        with open(path, "rb") as f:
            raw = f.read()
        assert [n for n in needles if n.encode() in raw] == [], path
    with world.engine.connect() as conn:
        globex = conn.scalar(select(Customer.name).where(Customer.tenant == "globex"))
    assert globex == "globex"
