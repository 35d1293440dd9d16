"""Field-service alerts: list, read, acknowledge, assign, resolve."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select

from api import alerts, schemas
from api.deps import AlertReader, AlertWriter, SessionDep
from api.scope import get_visible, restrict
from fleet.tables import Alert, utcnow

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.get("", response_model=list[schemas.AlertOut])
def list_alerts(
    sess: SessionDep,
    who: AlertReader,
    status: Literal["open", "acknowledged", "assigned", "resolved", "active"] = "active",
    severity: Literal["critical", "high", "medium"] | None = None,
    customer_id: schemas.CustomerFilter = None,
    machine_id: schemas.MachineFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
):
    """Alerts by severity, then shortest lead time; `active` means not resolved."""
    query = restrict(select(Alert), Alert.customer_id, who)
    query = query.where(
        Alert.status.in_(alerts.OPEN_STATES) if status == "active" else Alert.status == status
    )
    if severity:
        query = query.where(Alert.severity == severity)
    if customer_id is not None:
        query = query.where(Alert.customer_id == customer_id)
    if machine_id is not None:
        query = query.where(Alert.machine_id == machine_id)
    query = query.order_by(Alert.severity_rank, Alert.lead_rank, Alert.id)
    return sess.scalars(query.limit(limit).offset(offset)).all()


@router.get("/{alert_id}", response_model=schemas.AlertOut)
def get_alert(alert_id: schemas.AlertId, sess: SessionDep, who: AlertReader):
    """One alert with its evidence."""
    return get_visible(sess, Alert, alert_id, who, "alert")


@router.post("/{alert_id}/ack", response_model=schemas.AlertOut)
def acknowledge(alert_id: schemas.AlertId, sess: SessionDep, who: AlertWriter):
    """Acknowledge an open alert."""
    return alerts.acknowledge(sess, get_visible(sess, Alert, alert_id, who, "alert"), who, utcnow())


@router.post("/{alert_id}/assign", response_model=schemas.AlertOut)
def assign(alert_id: schemas.AlertId, body: schemas.AssignIn, sess: SessionDep, who: AlertWriter):
    """Assign the alert to a field-service user."""
    alert = get_visible(sess, Alert, alert_id, who, "alert")
    return alerts.assign(sess, alert, body.assignee_id, who, utcnow())


@router.post("/{alert_id}/resolve", response_model=schemas.AlertOut)
def resolve(alert_id: schemas.AlertId, body: schemas.ResolveIn, sess: SessionDep, who: AlertWriter):
    """Resolve with a finding (confirmed_fault, no_fault_found, other + text) and the parts used."""
    alert = get_visible(sess, Alert, alert_id, who, "alert")
    return alerts.resolve(
        sess, alert, finding=body.finding, text=body.text, parts=body.parts_used, by=who, now=utcnow()
    )
