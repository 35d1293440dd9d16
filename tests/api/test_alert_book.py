"""A run of predictions through one `AlertBook` leaves the same alerts and audit trail as one by one."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select

from api import alerts
from api.auth import Principal
from fleet import registry
from fleet.db import session
from fleet.tables import UNNAMED_MODE, Alert, Prediction, WorkflowEvent
from models import statuses
from tests.api.support import NOW
from tests.lifecycle.support import restored_copy

TECHNICIAN = Principal(user_id=0, name="technician", role="field_service", customers=None)
# (machine, hours after NOW, status, risk, mode, hours to the forecast crossing or None, threshold)
RUN_1 = [
    (0, 0, "ok", 0.6, "bearing_wear", 120, 0.5),  # opens A, medium
    (0, 1, "ok", 0.7, "bearing_wear", 48, 0.5),  # A rises to high
    (0, 2, "ok", 0.55, "seal_leak", 120, 0.5),  # A, still in its episode, names the new mode; stays high
    (1, 2, "ok", 0.85, "bearing_wear", 10, 0.5),  # opens E on the other machine, critical
    (0, 3, "ok", 0.3, "bearing_wear", 120, 0.5),  # below the threshold: nothing
    (1, 5, statuses.COLD_START_STATUS, 0.7, "bearing_wear", None, 0.5),  # a cold start's risk updates E
    (1, 6, "insufficient_data", 0.9, "bearing_wear", 10, 0.5),  # no risk to alert on
    "resolve E",
    (1, 8, "ok", 0.7, "bearing_wear", 120, 0.5),  # E resolved: opens F
    (1, 9, "ok", None, "bearing_wear", 120, 0.5),
    (1, 10, "ok", 0.75, "bearing_wear", 120, 0.8),  # below this version's threshold
]
RUN_2 = [
    (0, 30, "ok", 0.6, "bearing_wear", 120, 0.5),  # after a lull, A names another mode: opens B
    (0, 31, "ok", 0.9, "seal_leak", None, 0.5),  # B, in its episode, before A of the same mode; critical
    (1, 50, "ok", 0.6, None, 120, 0.5),  # the unnamed mode's alert without a prediction goes on
    (0, 60, "ok", 0.6, "bearing_wear", 120, 0.5),  # A and B both name seal_leak and are quiet: opens C
    (0, 61, "ok", 0.6, "seal_leak", 30, 0.5),  # C
    (0, 100, "ok", 0.6, "seal_leak", 120, 0.5),  # C, the newest of that mode, ended its episode: opens D
]


def _world(engine: Engine) -> tuple[list[int], dict[tuple[int, int], int]]:
    """Two machines, an open unnamed-mode alert without a prediction, and the runs' predictions by step."""
    registry.add_customer(engine=engine, tenant="acme")
    machines = [registry.add_machine(engine=engine, tenant="acme", code=f"p{i}") for i in range(2)]
    ids = {}
    with session(engine) as sess:
        customer = machines[0].customer_id
        sess.add(
            Alert(
                customer_id=customer,
                machine_id=machines[1].id,
                failure_mode=UNNAMED_MODE,
                risk=0.7,
                severity="medium",
                first_seen=NOW,
                last_seen=NOW,
            )
        )
        for step in RUN_1 + RUN_2:
            if isinstance(step, str):
                continue
            machine, hours, status, risk, mode, eta_h, _ = step
            ts = NOW + timedelta(hours=hours)
            prediction = Prediction(
                customer_id=customer,
                machine_id=machines[machine].id,
                ts=ts,
                status=status,
                horizon_hours=168.0,
                risk=risk,
                failure_mode=mode,
                eta=None if eta_h is None else ts + timedelta(hours=eta_h),
                eta_sensor=None if eta_h is None else "vibration_rms_mm_s",
                contributions=[{"sensor": "vibration_rms_mm_s", "delta": 0.3, "text": f"{hours} h"}],
                model_version="v1",
            )
            sess.add(prediction)
            sess.flush()
            ids[(machine, hours)] = prediction.id
    return [m.id for m in machines], ids


def _run(engine: Engine, ids: dict, batched: bool) -> list[int | None]:
    """Both runs, each in one transaction, through one book each or one prediction at a time."""
    applied = []
    for steps in (RUN_1, RUN_2):
        with session(engine) as sess:
            book = alerts.AlertBook(sess) if batched else None
            for step in steps:
                if isinstance(step, str):
                    alert = sess.get(Alert, applied[3])
                    alerts.acknowledge(sess, alert, TECHNICIAN, NOW + timedelta(hours=7))
                    alerts.resolve(
                        sess,
                        alert,
                        finding="no_fault_found",
                        text=None,
                        parts_used=[],
                        by=TECHNICIAN,
                        now=NOW + timedelta(hours=7),
                    )
                    continue
                machine, hours, *_, threshold = step
                prediction = sess.get(Prediction, ids[(machine, hours)])
                if book is not None:
                    alert = book.apply(prediction, prediction.ts, threshold=threshold)
                else:
                    alert = alerts.apply_prediction(sess, prediction, prediction.ts, threshold=threshold)
                applied.append(None if alert is None else alert.id)
    return applied


def _stored(engine: Engine) -> tuple[list, list]:
    """Every alert row, every column; the audit trail but the wall-clock time of each entry."""
    events = [c for c in WorkflowEvent.__table__.c if c.name != "at"]
    with engine.connect() as conn:
        rows = conn.execute(select(Alert.__table__).order_by(Alert.id)).all()
        trail = conn.execute(select(*events).order_by(WorkflowEvent.id)).all()
    return [r._asdict() for r in rows], [r._asdict() for r in trail]


def test_a_book_opens_updates_and_resets_alerts_as_applying_predictions_one_by_one(
    engine, postgres, tmp_path
) -> None:
    machines, ids = _world(engine)
    with restored_copy(engine, postgres, tmp_path) as twin:
        one_by_one = _run(engine, ids, batched=False)
        batched = _run(twin, ids, batched=True)
        assert batched == one_by_one
        (alerts_one, trail_one), (alerts_batched, trail_batched) = _stored(engine), _stored(twin)
    assert alerts_batched == alerts_one
    assert trail_batched == trail_one

    # The run covers what it says: A..F and the unnamed-mode alert, two still open on the first machine
    # with the mode their latest prediction named, severities that only rose, a count per prediction.
    summary = [
        (machines.index(a["machine_id"]), a["failure_mode"], a["severity"], a["status"], a["count"])
        for a in alerts_one
    ]
    assert summary == [
        (1, UNNAMED_MODE, "medium", "open", 2),
        (0, "seal_leak", "high", "open", 3),  # A
        (1, "bearing_wear", "critical", "resolved", 2),  # E
        (1, "bearing_wear", "medium", "open", 1),  # F
        (0, "seal_leak", "critical", "open", 2),  # B
        (0, "seal_leak", "medium", "open", 2),  # C
        (0, "seal_leak", "medium", "open", 1),  # D
    ]
    opened = [t["subject_id"] for t in trail_one if t["subject"] == "alert" and t["action"] == "opened"]
    assert opened == [a["id"] for a in alerts_one[1:]]
