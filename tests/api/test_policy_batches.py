"""A policy pass in batches decides as one prediction at a time did, and a pass that crashed resumes.

The pass builds its offer chooser once and reads each batch's alerts, offers, machines, customers and
their contacts once; applying the predictions one by one, each in a transaction of its own that reads afresh
and builds the chooser anew, must leave the same alerts, offers, audit trail, outbox and watermark, also
where a batch withdraws an approved offer and so frees its customer's contact budget for a later proposal.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from sqlalchemy import Engine, event, select, update

from api import alerts, catalog, catalog_versions, offer_lifecycle, offers, policy
from api.auth import Principal
from api.events import OFFER_APPROVED
from fleet import registry
from fleet.db import session
from fleet.settings import Settings
from fleet.tables import Alert, Customer, Machine, Offer, OutboxMessage, Prediction, Watermark, WorkflowEvent
from models import statuses, versions
from tests.api.routing_support import SECRET
from tests.api.support import NOW
from tests.lifecycle.support import restored_copy

ADMIN = Principal(user_id=None, name="admin", role="admin", customers=None)  # type: ignore[arg-type]
SEED = 11
# (customer, machine, risk, mode, hours to the forecast crossing, status, version); None risk: no risk
STREAM = [
    ("umbrella", 0, 0.75, "bearing_wear", 240, "ok", None),  # opens an alert, an offer (learning)
    ("umbrella", 0, 0.78, "bearing_wear", 240, "ok", None),  # the same alert; the offer takes its text
    ("umbrella", 1, 0.9, "seal_leak", 24, "ok", None),  # critical: service first, no offer
    ("umbrella", 1, 0.3, "seal_leak", 24, "ok", None),  # below: nothing to withdraw
    ("umbrella", 0, 0.2, "bearing_wear", 240, "ok", None),  # below: its offers withdrawn
    ("umbrella", 0, 0.85, "bearing_wear", 300, "ok", None),  # the alert goes on; offers again
    ("umbrella", 2, 0.65, "valve_leak", 200, "ok", "strict"),  # below the strict version's 0.7
    ("umbrella", 2, 0.72, "valve_leak", 200, "ok", "strict"),  # at it: alert and offer
    ("umbrella", 2, None, None, None, "insufficient_data", None),
    ("umbrella", 2, 0.8, "valve_leak", 200, statuses.COLD_START_STATUS, None),  # alert, never an offer
    ("globex", 0, 0.82, "seal_leak", 200, "ok", None),  # key account's price points
    ("globex", 0, 0.83, "seal_leak", 200, "ok", None),
    ("globex", 1, 0.1, "bearing_wear", 200, "ok", None),  # its approved offer withdrawn: the CRM told
    ("globex", 1, 0.95, None, 200, "ok", None),  # unnamed mode
    ("acme", 0, 0.8, "bearing_wear", 200, "ok", None),  # contact budget spent: no offer
    ("initech", 0, 0.9, "bearing_wear", 200, "ok", None),  # no consent to offers
    # One batch of 4: hooli's budget of one contact spent by machine 0's approved offer, its hand-off pending.
    ("hooli", 1, 0.8, "bearing_wear", 200, "ok", None),  # the budget spent: no offer
    ("hooli", 0, 0.2, "bearing_wear", 200, "ok", None),  # its approved offer withdrawn: contact taken back
    ("hooli", 1, 0.82, "bearing_wear", 200, "ok", None),  # the budget free again: an offer
    ("hooli", 2, 0.8, "seal_leak", 200, "ok", None),  # an offer too: a proposal is no contact
    ("umbrella", 0, 0.9, "bearing_wear", 300, "ok", None),
    ("globex", 0, 0.4, "seal_leak", 200, "ok", None),  # its offers withdrawn
]
HOOLI_BATCH = (16, 20)  # where hooli's four stand in the stream: one batch of `policy.run_once(batch=4)`


def _learning_catalog(sess, *, exploration: float, temperature: float) -> None:  # noqa: ANN001
    """A catalog version like the shipped one whose offers the learning policy chooses, in force."""
    shipped = catalog.default()
    source = catalog.DEFAULT_FILE.read_text(encoding="utf-8")
    source = source.replace(f"version: {shipped.version}\n", f"version: {shipped.version + 1}\n", 1)
    policy_line = (
        f"policy: {{name: learning, exploration: {exploration}, optimism: 0.5, temperature: {temperature}}}"
    )
    source = source.replace(
        "policy: {name: first_fit, exploration: 0.01, optimism: 0.5, temperature: 0.0}", policy_line, 1
    )
    catalog_versions.add(sess, source=source, by=ADMIN, now=NOW - timedelta(days=20))
    catalog_versions.activate(sess, version=shipped.version + 1, by=ADMIN, now=NOW - timedelta(days=20))


def _world(engine: Engine, settings: Settings, *, exploration: float, temperature: float) -> dict:
    """Four customers, a strict model version, a small ledger, an approved offer; the stream's predictions.

    Returns the machines by (customer, index) and the stream's prediction ids.
    """
    machines = {}
    for tenant, grants, segment, count in (
        ("acme", True, None, 1),
        ("globex", True, "key_account", 2),
        ("umbrella", True, "mid", 3),
        ("initech", False, None, 1),
        ("hooli", True, "small", 3),
    ):
        registry.add_customer(engine=engine, tenant=tenant, offers=grants)
        for i in range(count):
            machine = registry.add_machine(
                engine=engine, tenant=tenant, code=f"{tenant}-{i}", machine_type="centrifugal_pump"
            )
            machines[(tenant, i)] = machine.id
        with session(engine) as sess:
            sess.scalars(select(Customer).where(Customer.tenant == tenant)).one().segment = segment
    strict = versions.register(
        engine, model=SimpleNamespace(threshold_=0.7), machine_type="centrifugal_pump", activate=False
    )
    with session(engine) as sess:
        _learning_catalog(sess, exploration=exploration, temperature=temperature)
    # The ledger: offers of three weeks ago, answered; acme's delivered a week ago spends its budget.
    past = NOW - timedelta(days=21)
    history = [("acme", 0), ("globex", 0), ("umbrella", 1), ("globex", 1)]
    for key in history:
        _predict(engine, machines[key], 0.85, "bearing_wear", 200, "ok", None, at=past)
    policy.run_once(engine=engine, settings=settings, now=past, rng=np.random.default_rng(1))
    by = Principal(user_id=None, name="am", role="account_manager", customers=None)  # type: ignore[arg-type]
    with session(engine) as sess:
        made = sess.scalars(select(Offer).order_by(Offer.id)).all()
        assert len(made) == len(history)
        roomy = settings.model_copy(update={"offers_per_account_per_week": 3})  # globex had two that day
        for offer in made:
            offers.approve(sess, offer, by=by, now=past + timedelta(hours=1), settings=roomy)
        sess.flush()
        for i, offer in enumerate(made[:-1]):  # globex's second stays approved, delivered
            offers.record_outcome(
                sess, offer, by=None, now=past + timedelta(days=2), accepted=i == 1, revenue=None
            )
        delivered = update(OutboxMessage).where(OutboxMessage.event_type == OFFER_APPROVED)
        sess.execute(delivered.values(status="delivered", delivered_at=past + timedelta(hours=3)))
        acme = delivered.where(OutboxMessage.offer_id == made[0].id)
        sess.execute(acme.values(delivered_at=NOW - timedelta(days=3)))
        for alert in sess.scalars(select(Alert)):
            alert.status, alert.resolved_at = "resolved", past + timedelta(days=1)
    # hooli's approved offer of yesterday, its hand-off to the CRM still pending: a contact about to be made.
    yesterday = NOW - timedelta(days=1)
    _predict(engine, machines[("hooli", 0)], 0.85, "bearing_wear", 200, "ok", None, at=yesterday)
    policy.run_once(engine=engine, settings=settings, now=yesterday, rng=np.random.default_rng(2))
    with session(engine) as sess:
        (offer,) = sess.scalars(select(Offer).where(Offer.machine_id == machines[("hooli", 0)])).all()
        offers.approve(sess, offer, by=by, now=yesterday, settings=settings)
    ids = []
    for minute, (tenant, i, risk, mode, hours, status, version) in enumerate(STREAM):
        at = NOW + timedelta(minutes=minute)
        ids.append(
            _predict(engine, machines[(tenant, i)], risk, mode, hours, status, version and strict, at=at)
        )
    return {"machines": machines, "predictions": ids}


def _predict(engine, machine_id, risk, mode, hours, status, version, *, at) -> int:  # noqa: ANN001, PLR0913
    """A prediction row as the scorer writes it; returns its id."""
    with session(engine) as sess:
        owner = sess.get(Machine, machine_id).customer_id
        prediction = Prediction(
            customer_id=owner,
            machine_id=machine_id,
            ts=at,
            status=status,
            horizon_hours=168.0,
            risk=risk,
            failure_mode=mode,
            rul_hours=hours,
            rul_low=None if hours is None else hours * 0.7,
            rul_high=None if hours is None else hours * 1.3,
            eta=None if hours is None else at + timedelta(hours=hours),
            eta_sensor=None if hours is None else "vibration_rms_mm_s",
            contributions=[{"sensor": "vibration_rms_mm_s", "delta": 0.3, "text": "vibration rose"}],
            model_version=version or "test-1",
        )
        sess.add(prediction)
        sess.flush()
        return prediction.id


def _one_at_a_time(engine: Engine, settings: Settings, rng: np.random.Generator) -> None:
    """Each prediction in a transaction of its own, every read afresh, the chooser built for it anew."""
    while True:
        with session(engine) as sess:
            mark = sess.get(Watermark, policy.WATERMARK)
            prediction = sess.scalars(
                select(Prediction).where(Prediction.id > mark.value).order_by(Prediction.id).limit(1)
            ).first()
            if prediction is None:
                return
            threshold = policy.alert_threshold(sess, prediction.model_version)
            alert = alerts.apply_prediction(sess, prediction, NOW, threshold=threshold)
            offer_lifecycle.follow_prediction(
                sess, prediction, threshold=threshold, now=NOW, settings=settings
            )
            offers.follow_estimate(sess, prediction, NOW)
            if alert is not None:
                chooser = policy._offer_policy(sess, settings)  # noqa: SLF001 - the old pass built it per batch
                offers.propose(sess, prediction, settings, NOW, alert, policy=chooser, rng=rng)
            mark.value, mark.updated_at = prediction.id, NOW


def _stored(engine: Engine) -> dict:
    """Every alert, offer, outbox message and the watermark, every column; the audit trail but its clock."""
    events = [c for c in WorkflowEvent.__table__.c if c.name != "at"]
    outbox = [c for c in OutboxMessage.__table__.c if c.name not in ("created_at", "next_attempt_at")]
    with engine.connect() as conn:
        return {
            "alerts": [r._asdict() for r in conn.execute(select(Alert.__table__).order_by(Alert.id))],
            "offers": [r._asdict() for r in conn.execute(select(Offer.__table__).order_by(Offer.id))],
            "outbox": [r._asdict() for r in conn.execute(select(*outbox).order_by(OutboxMessage.id))],
            "trail": [r._asdict() for r in conn.execute(select(*events).order_by(WorkflowEvent.id))],
            "watermark": conn.scalar(select(Watermark.value).where(Watermark.name == policy.WATERMARK)),
        }


def _settings(engine: Engine) -> Settings:
    """A budget of one contact a week; a CRM webhook, so that approvals and withdrawals are queued for it."""
    url = engine.url.render_as_string(hide_password=False)
    crm = {"webhook_url": "http://127.0.0.1:9/crm", "webhook_secret": SECRET}
    return Settings(database_url=url, offers_per_account_per_week=1, **crm)


def test_a_pass_in_batches_leaves_what_one_prediction_at_a_time_left(engine, postgres, tmp_path) -> None:
    settings = _settings(engine)
    world = _world(engine, settings, exploration=0.3, temperature=1.0)
    with restored_copy(engine, postgres, tmp_path) as twin:
        _one_at_a_time(engine, settings, np.random.default_rng(SEED))
        policy.run_once(engine=engine, settings=settings, now=NOW, rng=np.random.default_rng(0))  # sweeps
        report = policy.run_once(
            engine=twin, settings=settings, now=NOW, batch=4, rng=np.random.default_rng(SEED)
        )
        one_by_one, batched = _stored(engine), _stored(twin)
    assert report.predictions == len(STREAM)
    for part in ("alerts", "offers", "outbox", "trail", "watermark"):
        assert batched[part] == one_by_one[part], part

    # The stream covers what it says: proposals by the learning policy at logged propensities below 1,
    # withdrawals (one of an approved offer the CRM had), gates that held.
    new = [o for o in one_by_one["offers"] if o["created_at"] == NOW]
    assert len(new) >= 4 and {o["policy"] for o in new} == {"learning"}
    assert any(o["propensity"] < 1 for o in new)
    assert world["predictions"][-1] == one_by_one["watermark"]
    withdrawn = [t for t in one_by_one["trail"] if t["subject"] == "offer" and t["action"] == "withdrawn"]
    assert len(withdrawn) >= 3
    assert any(
        m["event_type"] != OFFER_APPROVED for m in one_by_one["outbox"]
    )  # the CRM told of a withdrawal
    machines = world["machines"]
    offered = {o["machine_id"] for o in new}
    assert machines[("acme", 0)] not in offered and machines[("initech", 0)] not in offered
    assert machines[("umbrella", 1)] not in offered
    # Inside one batch, hooli's budget bound, was freed by a withdrawal, and two machines had offers.
    stream, first, end = world["predictions"], *HOOLI_BATCH
    assert [STREAM[i][0] for i in range(first, end)] == ["hooli"] * 4 and first % 4 == 0
    hooli = [machines[("hooli", i)] for i in range(3)]
    made = [
        (o["machine_id"], o["status"], o["prediction_id"])
        for o in one_by_one["offers"]
        if o["machine_id"] in hooli
    ]
    assert made[0][:2] == (hooli[0], "withdrawn")
    assert made[1:] == [(hooli[1], "proposed", stream[first + 2]), (hooli[2], "proposed", stream[first + 3])]


class Crash(Exception):
    """A pass stopped where the test says."""


@pytest.mark.parametrize("crash_at", [2, 4])
def test_a_pass_that_crashed_mid_way_resumes_without_loss_or_duplicates(
    engine, postgres, tmp_path, crash_at: int
) -> None:
    """The batch that crashed rolls back; the next pass takes it again: the same store as an unbroken pass."""
    settings = _settings(engine)
    _world(engine, settings, exploration=0.0, temperature=0.0)  # a choice that needs no draws: repeatable
    with restored_copy(engine, postgres, tmp_path) as twin:
        unbroken = policy.run_once(engine=twin, settings=settings, now=NOW, batch=4)
        batches: list[str] = []

        def crash_at_a_batch_end(conn, cursor, statement, parameters, *args) -> None:  # noqa: ANN001
            values = parameters.values() if isinstance(parameters, dict) else parameters
            if statement.lstrip().upper().startswith("UPDATE WATERMARKS") and policy.WATERMARK in values:
                batches.append(statement)
                if len(batches) == crash_at:
                    raise Crash(f"batch {crash_at}, before its commit")

        event.listen(engine, "before_cursor_execute", crash_at_a_batch_end)
        try:
            with pytest.raises(Crash):
                policy.run_once(engine=engine, settings=settings, now=NOW, batch=4)
        finally:
            event.remove(engine, "before_cursor_execute", crash_at_a_batch_end)
        with session(engine) as sess:
            done = sess.get(Watermark, policy.WATERMARK).value
        resumed = policy.run_once(engine=engine, settings=settings, now=NOW, batch=4)
        crashed, whole = _stored(engine), _stored(twin)
    assert 0 < resumed.predictions < len(STREAM) and done > 0
    assert resumed.predictions + 4 * (crash_at - 1) == unbroken.predictions
    assert _renumbered(crashed) == _renumbered(whole)


def _renumbered(stored: dict) -> dict:
    """The store with each row's id its rank: PostgreSQL's sequences keep the ids a rolled-back batch took."""
    alerts_ = {a["id"]: i for i, a in enumerate(stored["alerts"])}
    offers_ = {o["id"]: i for i, o in enumerate(stored["offers"])}
    subjects = {"alert": alerts_, "offer": offers_}

    def subject(row: dict) -> dict:
        ids = subjects.get(row["subject"])
        return row | {"subject_id": ids[row["subject_id"]] if ids else row["subject_id"]}

    return {
        "alerts": [a | {"id": alerts_[a["id"]]} for a in stored["alerts"]],
        "offers": [
            o | {"id": offers_[o["id"]], "alert_id": alerts_.get(o["alert_id"])} for o in stored["offers"]
        ],
        "outbox": [
            (m["event_type"], m["destination"], m["status"], offers_.get(m["offer_id"]))
            for m in stored["outbox"]
        ],
        "trail": [subject(t) | {"id": None} for t in stored["trail"]],
        "watermark": stored["watermark"],
    }
