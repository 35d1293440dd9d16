"""The "no data" alert: one open per live machine gone silent, resolved by the policy when data arrives again.

Judged on arrival time (`received_at`), as the connectivity state on the pages is. Only a machine that has
been live gets one: its last two messages arrived about as far apart as their readings were taken. Backfilled
or imported history (one arrival time for all of it) and a replay sent faster than it was recorded are not
live, so a world whose data time is not the wall clock does not fill the queue with silence.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import alerts, estimate
from api.audit import log_event
from api.connectivity import last_arrival
from fleet.tables import Alert, Machine, Telemetry

MODE = "no_data"
SEVERITY = "high"
PACED = 0.5  # arrivals at least this share of the readings' spacing apart are live, not a burst


def sweep(sess: Session, *, now: datetime, silent_after: timedelta) -> tuple[int, int]:
    """Open a "no data" alert per live machine silent `silent_after`; resolve those whose data returned."""
    pending = (Alert.failure_mode == MODE, Alert.status.in_(alerts.OPEN_STATES))
    open_ = dict(sess.execute(select(Alert.machine_id, Alert).where(*pending)).all())
    rows = sess.execute(select(Machine.id, Machine.customer_id, last_arrival().label("last"))).all()
    opened = resolved = 0
    for machine_id, customer_id, last in rows:
        silent = last is not None and now - last >= silent_after
        alert = open_.get(machine_id)
        if alert is not None and not silent and last is not None:
            _resolve(sess, alert, now, last)
            resolved += 1
        elif alert is None and silent and _was_live(sess, machine_id):
            _open(sess, machine_id, customer_id, now, last, silent_after)
            opened += 1
    return opened, resolved


def _was_live(sess: Session, machine_id: int) -> bool:
    """Whether the machine's last two messages arrived paced like their readings, not in one burst."""
    newest = sess.execute(
        select(Telemetry.received_at, Telemetry.ts)
        .where(Telemetry.machine_id == machine_id)
        .order_by(Telemetry.received_at.desc(), Telemetry.ts.desc())
        .limit(2)
    ).all()
    if len(newest) < 2:
        return False
    (last_at, last_ts), (prev_at, prev_ts) = newest
    spacing = abs(last_ts - prev_ts)
    return spacing > timedelta(0) and (last_at - prev_at) >= spacing * PACED


def _open(
    sess: Session, machine_id: int, customer_id: int, now: datetime, last: datetime, after: timedelta
) -> None:
    minutes = round(after / timedelta(minutes=1))
    text = f"No message has arrived since {estimate.stamp(last)} (silent after {minutes} min)."
    alert = Alert(
        customer_id=customer_id,
        machine_id=machine_id,
        failure_mode=MODE,
        severity=SEVERITY,
        queue_rank=alerts.QUEUE_RANK[SEVERITY],
        lead_rank=alerts.NO_LEAD_TIME,
        status="open",
        risk=0.0,
        count=1,
        evidence={"explanation": text, "silent_since": last.isoformat()},
        first_seen=now,
        last_seen=now,
    )
    sess.add(alert)
    sess.flush()
    data = {"severity": SEVERITY, "no_data_since": last.isoformat()}
    log_event(sess, "alert", alert.id, "opened", None, data)


def _resolve(sess: Session, alert: Alert, now: datetime, last: datetime) -> None:
    since = (alert.evidence or {}).get("silent_since")
    start = estimate.stamp(datetime.fromisoformat(since)) if since else "?"
    explanation = f"No data from {start} until a message arrived at {estimate.stamp(last)}."
    alert.evidence = {**(alert.evidence or {}), "explanation": explanation}
    alert.status, alert.resolved_at, alert.last_seen = "resolved", now, now
    log_event(sess, "alert", alert.id, "resolved", None, {"data_arrived": last.isoformat()})
