"""The "no data" alert: one open per live machine gone silent, resolved by the policy when data arrives again;
and the "low data rate" alert: one open per live machine sending under its share of its usual rate.

Judged on arrival time (`received_at`), as the connectivity state on the pages is. Only a machine that has
been live gets one: its last two messages arrived about as far apart as their readings were taken. Backfilled
or imported history (one arrival time for all of it) and a replay sent faster than it was recorded are not
live, so a world whose data time is not the wall clock does not fill the queue with silence.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import alerts, connectivity, estimate
from api.audit import log_event
from api.connectivity import LOW_DATA_RATE, NO_DATA, last_arrival
from fleet import watermarks
from fleet.tables import Alert, Machine, Telemetry

MODE = NO_DATA
SEVERITY = "high"
LOW_RATE_SEVERITY = "medium"
PACED = 0.5  # arrivals at least this share of the readings' spacing apart are live, not a burst
# The rate check counts a day of messages per machine: the policy loop runs it this often, not every pass.
RATE_EVERY = timedelta(minutes=5)
RATE_MARK = "policy.data_rate"


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


def sweep_rates(
    sess: Session, *, now: datetime, silent_after: timedelta, degraded_below: float
) -> tuple[int, int]:
    """Open a "low data rate" alert per live machine that is degraded; resolve those back online.

    At most every RATE_EVERY (judged on `now`); a silent machine is left to the "no data" alert.
    """
    stamp = int(now.timestamp())
    mark = watermarks.locked(sess, RATE_MARK)
    if 0 <= stamp - mark.value < RATE_EVERY.total_seconds():
        return 0, 0
    mark.value, mark.updated_at = stamp, now
    pending = (Alert.failure_mode == LOW_DATA_RATE, Alert.status.in_(alerts.OPEN_STATES))
    open_ = dict(sess.execute(select(Alert.machine_id, Alert).where(*pending)).all())
    states = connectivity.of_machines(sess, now, silent_after=silent_after, degraded_below=degraded_below)
    opened = resolved = 0
    for machine_id, (customer_id, found) in states.items():  # silent or never sent: not this alert's
        alert = open_.get(machine_id)
        if alert is not None and found.state == "online":
            _resolve_rate(sess, alert, now)
            resolved += 1
        elif alert is None and found.state == "degraded" and _was_live(sess, machine_id):
            _open_rate(sess, machine_id, customer_id, now, found.share, degraded_below)
            opened += 1
    return opened, resolved


def degraded(sess: Session, machine_ids: list[int]) -> dict[int, float]:
    """Of these machines, those with an open "low data rate" alert, with the share of the usual rate found."""
    pending = (Alert.failure_mode == LOW_DATA_RATE, Alert.status.in_(alerts.OPEN_STATES))
    found = sess.execute(
        select(Alert.machine_id, Alert.evidence).where(*pending, Alert.machine_id.in_(machine_ids))
    )
    return {machine_id: (evidence or {}).get("share", 0.0) for machine_id, evidence in found}


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
    since = last.isoformat()
    _add(sess, machine_id, customer_id, now, MODE, SEVERITY, {"explanation": text, "silent_since": since})


def _open_rate(
    sess: Session, machine_id: int, customer_id: int, now: datetime, share: float, below: float
) -> None:
    text = (
        f"Only {connectivity.share_words(share)} of its usual rate arrived in the hour before "
        f"{estimate.stamp(now)} (degraded below {connectivity.share_words(below)})."
    )
    evidence = {"explanation": text, "share": round(share, 4)}
    _add(sess, machine_id, customer_id, now, LOW_DATA_RATE, LOW_RATE_SEVERITY, evidence)


def _add(
    sess: Session, machine_id: int, customer_id: int, now: datetime, mode: str, severity: str, evidence: dict
) -> None:
    """An open alert about the machine's messages (no risk, no lead time), audited as opened by the policy."""
    alert = Alert(
        customer_id=customer_id,
        machine_id=machine_id,
        failure_mode=mode,
        severity=severity,
        queue_rank=alerts.QUEUE_RANK[severity],
        lead_rank=alerts.NO_LEAD_TIME,
        status="open",
        risk=0.0,
        count=1,
        evidence=evidence,
        first_seen=now,
        last_seen=now,
    )
    sess.add(alert)
    sess.flush()
    data = {"severity": severity} | {k: v for k, v in evidence.items() if k != "explanation"}
    log_event(sess, "alert", alert.id, "opened", None, data)


def _resolve(sess: Session, alert: Alert, now: datetime, last: datetime) -> None:
    since = (alert.evidence or {}).get("silent_since")
    start = estimate.stamp(datetime.fromisoformat(since)) if since else "?"
    explanation = f"No data from {start} until a message arrived at {estimate.stamp(last)}."
    _close(sess, alert, now, explanation, {"data_arrived": last.isoformat()})


def _resolve_rate(sess: Session, alert: Alert, now: datetime) -> None:
    before = (alert.evidence or {}).get("explanation", "")
    explanation = f"{before} Back to its usual rate at {estimate.stamp(now)}.".strip()
    _close(sess, alert, now, explanation, {"rate_back": now.isoformat()})


def _close(sess: Session, alert: Alert, now: datetime, explanation: str, data: dict) -> None:
    alert.evidence = {**(alert.evidence or {}), "explanation": explanation}
    alert.status, alert.resolved_at, alert.last_seen = "resolved", now, now
    log_event(sess, "alert", alert.id, "resolved", None, data)
