"""Field-service alerts: list, read, acknowledge, assign, resolve."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from fastapi import APIRouter, Request, Response
from sqlalchemy import Select, bindparam, select
from sqlalchemy.exc import DBAPIError

from api import alert_json, alerts, schemas
from api.deps import (
    AlertReader,
    AlertWriter,
    ConnectionDep,
    ReadConnection,
    ReaderDep,
    ReadRoute,
    SessionDep,
)
from api.offers import risk_scope
from api.page_cache import VersionedPages
from api.routers import columns
from api.scope import bound_customers, get_visible, restrict_bound
from fleet import changes
from fleet.tables import Alert, utcnow

router = APIRouter(prefix="/alerts", tags=["alerts"], route_class=ReadRoute)


_A = Alert.__table__  # Core columns: the ORM's per-row machinery costs more than the query
ALERT_COLUMNS = columns(schemas.AlertOut, _A)


@lru_cache(maxsize=256)
def _page_query(
    dialect: str, restricted: bool, status: str, severity: str | None, by_customer: bool, by_machine: bool
):
    """The list's SELECT for one shape of request, with the ids, limit and offset as parameters.

    Built once per shape: building a Select and its cache key per request costs ~0.2 ms. The caller's
    customers are a parameter too, so that the cache holds no caller's ids.
    """
    fast = alert_json.supports(dialect)
    query = alert_json.select_rows(dialect) if fast else select(*ALERT_COLUMNS)
    if restricted:
        query = restrict_bound(query, _A.c.customer_id)
    query = query.where(_A.c.status.in_(alerts.OPEN_STATES) if status == "active" else _A.c.status == status)
    if severity:
        query = query.where(_A.c.severity == severity)
    if by_customer:
        query = query.where(_A.c.customer_id == bindparam("customer_id"))
    if by_machine:
        query = query.where(_A.c.machine_id == bindparam("machine_id"))
    query = query.order_by(*alerts.QUEUE_ORDER)
    return fast, query.limit(bindparam("limit")).offset(bindparam("offset"))


# Every route that queries is a plain `def`: FastAPI runs it in its thread pool, off the event loop.
# The list answers JSON that the database wrote (api.alert_json); `response_model` documents it, and
# FastAPI sends a Response that a route returns as it is, without validating it again. A page is kept
# per worker until the alerts table changes (api.page_cache): queues are read far more than written.
@router.get("", response_model=list[schemas.AlertOut])
def list_alerts(
    request: Request,
    conn: ConnectionDep,
    who: AlertReader,
    status: Literal["open", "acknowledged", "assigned", "resolved", "active"] = "active",
    severity: Literal["critical", "high", "medium"] | None = None,
    customer_id: schemas.CustomerFilter = None,
    machine_id: schemas.MachineFilter = None,
    limit: schemas.Limit = 100,
    offset: schemas.Offset = 0,
):
    """Alerts by severity, then shortest lead time; `active` means not resolved."""
    who = risk_scope(conn, who)  # an alert carries risk: an account manager's only with consent
    customers = bound_customers(who)
    fast, query = _page_query(
        conn.dialect.name,
        customers is not None,
        status,
        severity,
        customer_id is not None,
        machine_id is not None,
    )
    params = {"customer_id": customer_id, "machine_id": machine_id, "limit": limit, "offset": offset}
    if customers is not None:
        params["customers"] = customers
    if fast:
        pages: VersionedPages = request.app.state.alert_pages
        version = changes.version(conn, "alerts")  # before the rows: see VersionedPages
        key = (who.customers, status, severity, customer_id, machine_id, limit, offset)
        body = pages.get_or_build(key, version, lambda: _render(conn, query, params))
        if body is not None:
            return Response(body, media_type="application/json")
        query = query.with_only_columns(*ALERT_COLUMNS)
    # Plain dicts: pydantic validates them several times faster than rows read through from_attributes.
    return [row._asdict() for row in conn.execute(query, params)]


def _render(conn: ReadConnection, query: Select, params: dict) -> bytes | None:
    """The page as JSON the database wrote, or None for a page the schema has to write."""
    try:
        return alert_json.render(conn.execute(query, params))
    except DBAPIError:
        return None  # SQLite's json() refuses evidence that Python wrote with NaN in it


@router.get("/{alert_id}", response_model=schemas.AlertOut)
def get_alert(alert_id: schemas.AlertId, sess: ReaderDep, who: AlertReader):
    """One alert with its evidence."""
    return get_visible(sess, Alert, alert_id, risk_scope(sess, who), "alert")


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
    """Resolve with a finding (confirmed_fault, replaced_before_failure, no_fault_found, other + text)."""
    alert = get_visible(sess, Alert, alert_id, who, "alert")
    return alerts.resolve(sess, alert, **body.model_dump(), by=who, now=utcnow())
