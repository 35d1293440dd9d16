"""Field-service alerts from predictions: one open alert per machine and failure mode, with a lifecycle."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from api import connectivity, estimate
from api.audit import log_event, require_state
from api.auth import Principal
from api.errors import Conflict
from fleet import errors, labels, machine_types
from fleet.tables import UNNAMED_MODE, Alert, Prediction, User
from models import statuses

# Risk that opens an alert when the prediction's model version has no stored threshold.
ALERT_MIN_RISK = 0.5
OPEN_STATES = ("open", "acknowledged", "assigned")
UNASSIGNED = ("open", "acknowledged")  # open states no technician has yet: a critical one puts service first
ALERTING = ("ok", statuses.COLD_START_STATUS)  # prediction statuses that carry a risk to alert on
# The queue: most severe first, then the nearest failure (index ix_alerts_queue walks it in this order).
QUEUE_ORDER = (Alert.queue_rank, Alert.lead_rank, Alert.id)
SEVERITY_LEVEL = {"medium": 1, "high": 2, "critical": 3}  # higher is more severe
QUEUE_RANK = {"critical": 1, "high": 2, "medium": 3}
FINDINGS = ("confirmed_fault", "replaced_before_failure", "no_fault_found", "other")
# Alerts without a lead time queue after those with one, on every database (NULL order differs).
NO_LEAD_TIME = 1e9


def lead_time_hours(prediction: Prediction) -> float | None:
    """Hours until the predicted failure: the forecast crossing if there is one, else the remaining life
    (`estimate.remaining_life`: a failure model's only); None without either."""
    if prediction.eta is not None:
        return max(0.0, (prediction.eta - prediction.ts).total_seconds() / 3600)
    return estimate.remaining_life(prediction)[0]


def severity_for(risk: float, lead_hours: float | None) -> str:
    """Critical when failure is likely and near, high when likely or near, medium otherwise."""
    near = lead_hours is not None and lead_hours <= 72
    if risk >= 0.8 and (near or lead_hours is None):
        return "critical"
    if risk >= 0.8 or (risk >= 0.65 and near):
        return "high"
    return "medium"


def evidence_of(prediction: Prediction) -> dict:
    """What the technician sees next to the alert: drivers, forecast and model."""
    hours, low, high = estimate.remaining_life(prediction)  # an older cold start's stored cap is none
    return {
        "prediction_id": prediction.id,
        "contributions": prediction.contributions or [],
        "explanation": prediction.explanation,
        # Every mode the model names, most likely first: the alert's own mode and what else may fail.
        "likely_modes": prediction.likely_modes or [],
        "rul_hours": hours,
        "rul_interval": [low, high],
        "eta": prediction.eta.isoformat() if prediction.eta else None,
        "eta_sensor": prediction.eta_sensor,
        "anomaly_score": prediction.anomaly_score,
        "no_failure_history": prediction.status == statuses.COLD_START_STATUS,
    }


def alerting(prediction: Prediction, threshold: float) -> bool:
    """Whether the prediction opens or updates an alert: a risk to alert on, at the threshold or above."""
    return prediction.status in ALERTING and prediction.risk is not None and prediction.risk >= threshold


def _open_alerts() -> Select:
    """Some machines' open alerts, each with the time of its latest prediction (None without one), locked:
    a technician's acknowledgement or resolve waits for the run's commit rather than be read over."""
    return (
        select(Alert, Prediction.ts)
        .outerjoin(Prediction, Prediction.id == Alert.last_prediction_id)
        .where(Alert.machine_id.in_(bindparam("machines", expanding=True)), Alert.status.in_(OPEN_STATES))
        .with_for_update(of=Alert)
    )


# Built once: building it took about as long as running it, once per prediction the policy applies.
_OPEN_ALERTS = _open_alerts()


class AlertBook:
    """The open alerts of the machines a session applies predictions to, each read once per book.

    One book applies a run of predictions in one transaction with one SELECT per machine, and a flush only
    where an alert opens (its audit event needs its id). It sees what the session changes on its alerts (a
    resolve in between), not alerts opened other than through it: a book lives within one run.
    """

    def __init__(self, sess: Session) -> None:
        self._sess = sess
        self._open: dict[int, list[list]] = {}  # machine id -> [alert, time of its latest prediction]

    def apply(self, prediction: Prediction, now: datetime, *, threshold: float) -> Alert | None:
        """`apply_prediction` without its flush of an updated alert: the session's next flush writes it."""
        if not alerting(prediction, threshold):
            return None
        mode = prediction.failure_mode or UNNAMED_MODE
        lead = lead_time_hours(prediction)
        severity = severity_for(prediction.risk, lead)
        entries = self._machine(prediction.machine_id)
        entry = _episode_alert(entries, prediction.ts, mode)
        if entry is None:
            alert = Alert(
                customer_id=prediction.customer_id,
                machine_id=prediction.machine_id,
                failure_mode=mode,
                severity=severity,
                status="open",
                risk=prediction.risk,
                count=1,
                first_prediction_id=prediction.id,
                first_seen=now,
            )
            self._sess.add(alert)
            entry = [alert, prediction.ts]
            entries.append(entry)
        else:
            alert = entry[0]
            alert.count += 1
            # Severity only rises while an alert is open; a lull does not quietly downgrade it.
            if SEVERITY_LEVEL[severity] > SEVERITY_LEVEL[alert.severity]:
                alert.severity = severity
        entry[1] = prediction.ts
        alert.failure_mode = mode
        alert.risk = prediction.risk
        alert.lead_time_hours = lead
        alert.queue_rank = QUEUE_RANK[alert.severity]
        alert.lead_rank = NO_LEAD_TIME if lead is None else lead
        alert.eta = prediction.eta
        alert.evidence = evidence_of(prediction)
        alert.last_prediction_id = prediction.id
        alert.model_version = prediction.model_version
        alert.last_seen = now
        if alert.id is None:
            self._sess.flush()
            log_event(
                self._sess, "alert", alert.id, "opened", None, {"severity": severity, "risk": prediction.risk}
            )
        return alert

    def critical_unassigned(self, machine_id: int) -> bool:
        """Whether a critical alert of the machine waits for a technician (open or acknowledged), as the
        book holds it now: one it opened or raised to critical for an earlier prediction counts at once."""
        return any(a.severity == "critical" and a.status in UNASSIGNED for a, _ in self._machine(machine_id))

    def read(self, machine_ids: Iterable[int]) -> None:
        """Read the open alerts of those of these machines the book has not read yet, in one query."""
        unread = sorted(set(machine_ids) - set(self._open))
        if unread:
            for machine_id in unread:
                self._open[machine_id] = []
            for alert, ts in self._sess.execute(_OPEN_ALERTS, {"machines": unread}):
                self._open[alert.machine_id].append([alert, ts])

    def _machine(self, machine_id: int) -> list[list]:
        """The machine's open alerts as read at its first prediction in this book, and those opened since."""
        self.read([machine_id])
        return self._open[machine_id]


def _episode_alert(entries: list[list], ts: datetime, mode: str) -> list | None:
    """The entry of the open alert a prediction at `ts` naming `mode` updates; None to open a new one.

    An alert still in its episode (its latest prediction at most `episodes.RESET_HOURS` before) comes
    first, then one of the same mode, the newest first; a same-mode alert whose episode ended is not updated.
    """
    from models import episodes  # with pandas, which `servicecast route` and `policy` need not load to start

    reset = timedelta(hours=episodes.RESET_HOURS)

    def rank(entry: list) -> tuple[bool, bool, int]:
        alert, last = entry
        return last is not None and ts - last <= reset, alert.failure_mode == mode, alert.id

    ranked = [(rank(e), e) for e in entries if e[0].status in OPEN_STATES]
    ranked = [(r, e) for r, e in ranked if r[0] or r[1]]
    if not ranked:
        return None
    (ongoing, _, _), entry = max(ranked, key=lambda pair: pair[0])
    return entry if ongoing or entry[1] is None else None


def apply_prediction(
    sess: Session, prediction: Prediction, now: datetime, *, threshold: float = ALERT_MIN_RISK
) -> Alert | None:
    """Open an alert for a prediction at the threshold, or update the open one of its machine and mode.

    A risk that stayed below the threshold for `episodes.RESET_HOURS` ended the episode: the next one opens
    a new alert (the backtest counts alerts the same way); the earlier alert stays for its finding. Within
    an episode the machine's alert goes on though the mode named changes (e.g. an OEM alarm limit's alert
    took the model's mode of that moment), as the backtest counts one episode per machine; it names the
    mode its latest prediction names, as its evidence is that prediction's. A run of predictions in one
    transaction goes through one `AlertBook` instead.
    """
    alert = AlertBook(sess).apply(prediction, now, threshold=threshold)
    if alert is not None:
        sess.flush()
    return alert


def escalate_overdue(sess: Session, *, now: datetime, after: timedelta) -> list[Alert]:
    """Escalate critical alerts nobody acknowledged within `after`, oldest first (on every database)."""
    overdue = sess.scalars(
        select(Alert)
        .where(
            Alert.status == "open",
            Alert.severity == "critical",
            Alert.escalated_at.is_(None),
            Alert.first_seen <= now - after,
        )
        .order_by(Alert.first_seen, Alert.id)
    ).all()
    for alert in overdue:
        alert.escalated_at = now
        log_event(
            sess, "alert", alert.id, "escalated", None, {"unacknowledged_for_min": after.total_seconds() / 60}
        )
    return list(overdue)


def acknowledge(sess: Session, alert: Alert, by: Principal, now: datetime) -> Alert:
    """open → acknowledged."""
    require_state("alert", alert, ("open",), "acknowledge")
    alert.status, alert.acknowledged_at = "acknowledged", now
    log_event(sess, "alert", alert.id, "acknowledged", by, {})
    return alert


def assign(sess: Session, alert: Alert, assignee_id: int, by: Principal, now: datetime) -> Alert:
    """open/acknowledged/assigned → assigned to a field-service user (acknowledging it if needed)."""
    require_state("alert", alert, OPEN_STATES, "assign")
    assignee = sess.get(User, assignee_id)
    if assignee is None:
        raise errors.NotFound(f"user {assignee_id} not found")
    if assignee.role not in ("field_service", "admin") or assignee.disabled_at:
        raise Conflict(f"user {assignee_id} is not an active field-service user")
    alert.acknowledged_at = alert.acknowledged_at or now
    alert.status, alert.assignee_id = "assigned", assignee_id
    log_event(sess, "alert", alert.id, "assigned", by, {"assignee_id": assignee_id})
    return alert


def resolve(
    sess: Session,
    alert: Alert,
    *,
    finding: str,
    text: str | None,
    parts_used: list[str],
    by: Principal,
    now: datetime,
    component: str | None = None,
    mode: str | None = None,
) -> Alert:
    """acknowledged/assigned → resolved with the technician's finding, which becomes a label for training."""
    require_state("alert", alert, ("acknowledged", "assigned"), "resolve")
    if finding not in FINDINGS:
        raise errors.InvalidInput(f"finding must be one of {', '.join(FINDINGS)}")
    if finding == "other" and not text:
        raise errors.InvalidInput("a finding of 'other' needs a text")
    about_messages = alert.failure_mode in connectivity.MODES
    if about_messages and labels.FINDING_KINDS.get(finding) in ("failure", "replacement"):
        raise errors.InvalidInput(
            "this alert is about the machine's messages, not about a part: resolve it with "
            "'no fault found' or 'other' and say what stopped the data"
        )
    type_name, declared = machine_types.declared_for(sess, [alert.machine_id])[alert.machine_id]
    if declared and (problem := declared.problem(type_name, component=component, mode=mode)):
        raise errors.InvalidInput(problem)
    alert.status, alert.resolved_at = "resolved", now
    alert.finding, alert.finding_text, alert.parts_used = finding, text, parts_used
    labelled = not about_messages and labels.record_finding(
        sess.connection(), alert=alert, finding=finding, at=now, component=component, mode=mode
    )
    data = {"finding": finding, "parts_used": parts_used, "labelled": labelled}
    log_event(sess, "alert", alert.id, "resolved", by, data)
    return alert
