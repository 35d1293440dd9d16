"""What the console pages show, read through the caller's scope."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from api import connectivity, policy
from api.alerts import OPEN_STATES, QUEUE_ORDER
from api.auth import Principal
from api.offers import CUSTOMER_VISIBLE, risk_scope
from api.scope import restrict
from fleet import machine_types
from fleet.tables import Alert, Customer, Machine, ModelVersion, Offer, Prediction, Site, Telemetry, User
from models import versions as model_versions

OFFER_TABS = {
    "proposed": ("proposed",),
    "approved": ("approved",),
    "sent": ("sent",),
    "outcome": ("accepted", "declined"),
    "closed": ("rejected", "withdrawn", "expired"),
}
ALL_OFFER_STATES = tuple(s for states in OFFER_TABS.values() for s in states)


@dataclass
class FleetRow:
    """A machine in the overview, with its latest prediction and open alerts."""

    machine: Machine
    customer: str
    site: str | None
    prediction: Prediction | None
    open_alerts: int
    risk_hidden: bool = False  # an account manager's view of a customer without `offers` consent
    last_received: datetime | None = None  # when its newest message arrived


def fleet_rows(
    sess: Session,
    who: Principal,
    *,
    customer_id: int | None = None,
    site_id: int | None = None,
    machine_type: str | None = None,
    search: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[FleetRow]:
    """Machines by latest risk, highest first; machines without a prediction (or hidden risk) last.

    `search` matches part of the machine's code or serial, or of its customer's or site's name.
    """
    scope = risk_scope(sess, who)
    latest = _latest_predictions()
    open_alerts = _open_alerts_by("machine_id")
    query = (
        select(Machine, Customer.name, Site.name, Prediction, open_alerts.c.n, connectivity.last_arrival())
        .join(Customer, Customer.id == Machine.customer_id)
        .outerjoin(Site, Site.id == Machine.site_id)
        .outerjoin(latest, latest.c.machine_id == Machine.id)
        .outerjoin(Prediction, Prediction.id == latest.c.pid)
        .outerjoin(open_alerts, open_alerts.c.key == Machine.id)
    )
    query = restrict(query, Machine.customer_id, who)
    if customer_id is not None:
        query = query.where(Machine.customer_id == customer_id)
    if site_id is not None:
        query = query.where(Machine.site_id == site_id)
    if machine_type:
        query = query.where(Machine.machine_type == machine_type)
    if search:
        pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        fields = (Machine.code, Machine.serial, Customer.name, Customer.tenant, Site.name)
        query = query.where(or_(*(func.lower(f).like(pattern, escape="\\") for f in fields)))
    risk = Prediction.risk
    if scope is not who:  # hidden risk must not show in the order either
        risk = case((Machine.customer_id.in_(sorted(scope.customers)), Prediction.risk), else_=None)
    query = query.order_by(risk.desc().nulls_last(), Machine.id).limit(limit).offset(offset)
    return [
        FleetRow(m, c, s, p, n or 0, False, at)
        if scope.sees(m.customer_id)
        else FleetRow(m, c, s, None, 0, True, at)
        for m, c, s, p, n, at in sess.execute(query)
    ]


def _latest_predictions():  # noqa: ANN202
    """Each machine's newest prediction id, as a subquery (machine_id, pid)."""
    query = select(Prediction.machine_id, func.max(Prediction.id).label("pid"))
    return query.group_by(Prediction.machine_id).subquery()


def _open_alerts_by(column: str):  # noqa: ANN202
    """Open alerts counted per `column` of the alerts table, as a subquery (key, n)."""
    key = getattr(Alert, column)
    query = select(key.label("key"), func.count().label("n")).where(Alert.status.in_(OPEN_STATES))
    return query.group_by(key).subquery()


def account_summary(
    sess: Session, who: Principal, customer_ids: list[int]
) -> dict[int, dict[str, int | None]]:
    """Per customer: machines, machines at alert risk and open alerts (None where its risk is hidden)."""
    summary = {cid: {"machines": 0, "at_risk": 0, "open_alerts": 0} for cid in customer_ids}
    if not customer_ids:
        return summary
    latest = _latest_predictions()
    machines = sess.execute(
        select(Machine.customer_id, Prediction.risk, Prediction.model_version)
        .outerjoin(latest, latest.c.machine_id == Machine.id)
        .outerjoin(Prediction, Prediction.id == latest.c.pid)
        .where(Machine.customer_id.in_(customer_ids))
    ).all()
    # At alert risk: the latest risk reaches the threshold the policy applies to its model version.
    thresholds = {version: policy.alert_threshold(sess, version) for version in {v for *_, v in machines}}
    for cid, risk, version in machines:
        summary[cid]["machines"] += 1
        summary[cid]["at_risk"] += risk is not None and risk >= thresholds[version]
    alerts = _open_alerts_by("customer_id")
    for cid, n in sess.execute(select(alerts.c.key, alerts.c.n).where(alerts.c.key.in_(customer_ids))):
        summary[cid]["open_alerts"] = n
    scope = risk_scope(sess, who)
    for cid in customer_ids:
        if not scope.sees(cid):
            summary[cid].update(at_risk=None, open_alerts=None)
    return summary


def filter_choices(sess: Session, who: Principal, customer_id: int | None = None) -> dict:
    """Customers, sites (of the chosen customer only) and machine types the caller may filter by."""
    customers = sess.scalars(restrict(select(Customer), Customer.id, who).order_by(Customer.name)).all()
    sites = restrict(select(Site), Site.customer_id, who).order_by(Site.name)
    if customer_id is not None:
        sites = sites.where(Site.customer_id == customer_id)
    sites = sess.scalars(sites).all()
    types = sess.scalars(
        restrict(select(Machine.machine_type).distinct(), Machine.customer_id, who).order_by(
            Machine.machine_type
        )
    ).all()
    return {"customers": customers, "sites": sites, "types": types}


def alert_rows(
    sess: Session, who: Principal, *, states: tuple[str, ...], severity: str | None, limit: int = 200, **where
) -> list[tuple[Alert, Machine, str, Prediction | None]]:
    """Alerts by severity, then the shortest lead time, with machine, customer name and latest prediction."""
    query = (
        select(Alert, Machine, Customer.name, Prediction)
        .join(Machine, Machine.id == Alert.machine_id)
        .join(Customer, Customer.id == Alert.customer_id)
        .outerjoin(Prediction, Prediction.id == Alert.last_prediction_id)
        .where(Alert.status.in_(states))
    )
    query = restrict(query, Alert.customer_id, risk_scope(sess, who))  # an alert carries risk
    if severity:
        query = query.where(Alert.severity == severity)
    for column, value in where.items():
        query = query.where(getattr(Alert, column) == value)
    query = query.order_by(*QUEUE_ORDER).limit(limit)
    return [tuple(row) for row in sess.execute(query)]


def alert_counts(sess: Session, who: Principal, *, severity: str | None) -> dict[str, int]:
    """How many alerts the caller may see, per status (for the queue's tab counts)."""
    query = select(Alert.status, func.count()).group_by(Alert.status)
    query = restrict(query, Alert.customer_id, risk_scope(sess, who))
    if severity:
        query = query.where(Alert.severity == severity)
    return dict(sess.execute(query).all())


def offer_rows(
    sess: Session, who: Principal, *, states: tuple[str, ...], limit: int = 200, **where
) -> list[tuple[Offer, Machine, Customer]]:
    """Offers newest first, with machine and customer; customers see only what was sent to them."""
    if who.role == "customer":
        states = tuple(s for s in states if s in CUSTOMER_VISIBLE)
    query = (
        select(Offer, Machine, Customer)
        .join(Machine, Machine.id == Offer.machine_id)
        .join(Customer, Customer.id == Offer.customer_id)
        .where(Offer.status.in_(states))
    )
    query = restrict(query, Offer.customer_id, who)
    for column, value in where.items():
        query = query.where(getattr(Offer, column) == value)
    return [tuple(row) for row in sess.execute(query.order_by(Offer.id.desc()).limit(limit))]


def offer_counts(sess: Session, who: Principal) -> dict[str, int]:
    """How many offers each inbox tab holds."""
    query = restrict(select(Offer.status, func.count()).group_by(Offer.status), Offer.customer_id, who)
    by_status = dict(sess.execute(query).all())
    return {tab: sum(by_status.get(s, 0) for s in states) for tab, states in OFFER_TABS.items()}


def field_staff(sess: Session) -> list[User]:
    """Users an alert can be assigned to."""
    query = select(User).where(User.role.in_(("field_service", "admin")), User.disabled_at.is_(None))
    return sess.scalars(query.order_by(User.name)).all()


def user_names(sess: Session, ids: set[int | None]) -> dict[int, str]:
    """Display names of users by id."""
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(sess.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def model_version(sess: Session, version: str | None) -> ModelVersion | None:
    """The registry's row of a prediction's model version, to name it by its type and training time."""
    if not version:
        return None
    return sess.scalar(select(ModelVersion).where(ModelVersion.version == version).limit(1))


def assignee_names(sess: Session, alert_rows: list[tuple]) -> dict[int, str]:
    """Display names of the users the alerts of these rows (alert first) are assigned to."""
    return user_names(sess, {a.assignee_id for a, *_ in alert_rows})


def last_message(sess: Session, machine_id: int) -> Telemetry | None:
    """The machine's newest telemetry row (by its readings' time)."""
    query = select(Telemetry).where(Telemetry.machine_id == machine_id).order_by(Telemetry.ts.desc())
    return sess.scalar(query.limit(1))


def predictions_between(sess: Session, machine_id: int, start: datetime, end: datetime) -> list[Prediction]:
    """The machine's predictions in a window, oldest first (at most 2,000, the newest kept)."""
    query = (
        select(Prediction)
        .where(Prediction.machine_id == machine_id, Prediction.ts >= start, Prediction.ts <= end)
        .order_by(Prediction.ts.desc())
        .limit(2000)
    )
    return list(reversed(sess.scalars(query).all()))


def latest_prediction(sess: Session, machine_id: int) -> Prediction | None:
    """The machine's newest prediction."""
    query = select(Prediction).where(Prediction.machine_id == machine_id).order_by(Prediction.id.desc())
    return sess.scalar(query.limit(1))


def sensor_specs(sess: Session, machine_type: str) -> dict[str, machine_types.SensorSpec]:
    """Words, units and OEM limits of every sensor the machine type has had (empty for an unknown type)."""
    return machine_types.sensor_specs(sess, machine_type)


def specs_by_type(sess: Session, names: Iterable[str]) -> dict[str, dict[str, machine_types.SensorSpec]]:
    """`sensor_specs` of each machine type named: one lookup per type a page shows, not one per row."""
    return {name: sensor_specs(sess, name) for name in set(names)}


_LIMITS: dict[tuple[str, str], dict[str, float]] = {}


def trend_limits(sess: Session, version: str | None) -> dict[str, float]:
    """The relative deviation limits the trend forecaster of a model version uses, per sensor."""
    if not version:
        return {}
    key = (str(sess.get_bind().url), version)  # a version is immutable, but only within its database
    if key not in _LIMITS:
        try:
            _LIMITS[key] = model_versions.trend_limits(sess, version)
        except model_versions.ModelNotFound:
            return {}
    return _LIMITS[key]
