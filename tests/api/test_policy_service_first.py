"""The "service first" gate inside one batch: a critical alert the batch opens or raises, by the proposal's
own prediction or an earlier one, holds the offer back at once; one assigned to a technician does not."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from api import alerts, auth, policy
from api.auth import Principal
from fleet import registry
from fleet.db import session
from fleet.settings import Settings
from fleet.tables import Alert, Offer
from tests.api.support import NOW, add_prediction

TECH = Principal(user_id=None, name="dispatcher", role="admin", customers=None)  # type: ignore[arg-type]


def test_a_batch_gates_its_proposals_on_the_critical_alerts_it_opens_and_raises(engine) -> None:
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False))
    registry.add_customer(engine=engine, tenant="acme", offers=True)
    names = ("opened", "raised", "assigned", "acknowledged")
    pump = "centrifugal_pump"
    ids = {n: registry.add_machine(engine=engine, tenant="acme", code=n, machine_type=pump).id for n in names}
    technician, _ = auth.create_user(engine=engine, name="tech", role="field_service")
    # An hour before: critical alerts on two machines; a technician is assigned one, the other is only seen.
    for name in ("assigned", "acknowledged"):
        add_prediction(engine, ids[name], risk=0.9, hours_ahead=24)
    policy.run_once(engine=engine, settings=settings, now=NOW - timedelta(hours=1))
    with session(engine) as sess:
        found = {a.machine_id: a for a in sess.scalars(select(Alert))}
        assert {found[ids[n]].severity for n in ("assigned", "acknowledged")} == {"critical"}
        alerts.acknowledge(sess, found[ids["acknowledged"]], TECH, NOW)
        alerts.assign(sess, found[ids["assigned"]], technician.id, TECH, NOW)
        assert sess.scalar(select(Offer.id)) is None
    # One batch, in this order (the first fitting item of each in brackets):
    add_prediction(engine, ids["opened"], risk=0.9, hours_ahead=24)  # opens a critical alert: none
    add_prediction(engine, ids["raised"], risk=0.65, hours_ahead=240)  # a medium alert: an offer (kit)
    add_prediction(engine, ids["opened"], risk=0.75, hours_ahead=240)  # its alert stays critical: none
    add_prediction(engine, ids["raised"], risk=0.9, hours_ahead=24)  # raised to critical: none (part)
    add_prediction(engine, ids["assigned"], risk=0.75, hours_ahead=240)  # a technician has it: an offer
    add_prediction(engine, ids["acknowledged"], risk=0.75, hours_ahead=240)  # not assigned yet: none
    report = policy.run_once(engine=engine, settings=settings, now=NOW)
    assert report.predictions == 6 and report.alerts_opened_or_updated == 6
    with session(engine) as sess:
        made = sess.execute(select(Offer.machine_id, Offer.catalog_item).order_by(Offer.id)).all()
        severities = {a.machine_id: a.severity for a in sess.scalars(select(Alert))}
    assert made == [(ids["raised"], "spare_parts_kit"), (ids["assigned"], "wear_part_replacement")]
    assert set(severities.values()) == {"critical"} and len(severities) == len(names)
