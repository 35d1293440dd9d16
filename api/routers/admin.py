"""The caller, the outcome ledger, the audit trail, health and readiness."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from api import schemas
from api.deps import Admin, PrincipalDep, SessionDep
from fleet import labels, migrate
from fleet.tables import Alert, Offer, WorkflowEvent

router = APIRouter(tags=["admin"])
log = logging.getLogger(__name__)


@router.get("/me", response_model=schemas.MeOut)
async def me(who: PrincipalDep) -> schemas.MeOut:
    """Who the API key belongs to and what it may see."""
    customers = None if who.customers is None else sorted(who.customers)
    return schemas.MeOut(user_id=who.user_id, name=who.name, role=who.role, customers=customers)


@router.get("/ledger", response_model=list[schemas.LedgerRow])
def ledger(sess: SessionDep, who: Admin) -> list[schemas.LedgerRow]:
    """Per model version: alert precision from findings, and what the offers earned."""
    alert_rows = sess.execute(
        select(
            Alert.model_version,
            func.count(),
            func.count(Alert.finding),
            func.count().filter(Alert.finding.in_(labels.RIGHT_ALERT_FINDINGS)),
        ).group_by(Alert.model_version)
    ).all()
    offer_rows = sess.execute(
        select(
            Offer.model_version,
            func.count(),
            func.count().filter(Offer.status == "accepted"),
        ).group_by(Offer.model_version)
    ).all()
    won_rows = sess.execute(
        select(Offer.model_version, Offer.currency, func.sum(Offer.revenue))
        .where(Offer.revenue.is_not(None))
        .group_by(Offer.model_version, Offer.currency)
    ).all()
    versions: dict[str | None, schemas.LedgerRow] = {}

    def row_of(version: str | None) -> schemas.LedgerRow:
        empty = {"alerts": 0, "resolved": 0, "confirmed": 0, "alert_precision": None, "offers": 0}
        return versions.setdefault(
            version,
            schemas.LedgerRow(
                model_version=version, **empty, accepted=0, revenue=0.0, revenue_by_currency={}
            ),
        )

    for version, n, resolved, confirmed in alert_rows:
        row = row_of(version)
        row.alerts, row.resolved, row.confirmed = n, resolved, confirmed
        row.alert_precision = confirmed / resolved if resolved else None
    for version, n, accepted in offer_rows:
        row = row_of(version)
        row.offers, row.accepted = n, accepted
    for version, currency, revenue in won_rows:
        row_of(version).revenue_by_currency[currency] = float(revenue)
    for row in versions.values():
        # Amounts in two currencies added up are no amount: one figure only when there is one currency.
        amounts = list(row.revenue_by_currency.values())
        row.revenue = amounts[0] if len(amounts) == 1 else (None if amounts else 0.0)
    return sorted(versions.values(), key=lambda r: r.model_version or "")


@router.get("/audit", response_model=list[schemas.AuditEventOut])
def audit_trail(
    sess: SessionDep,
    who: Admin,
    subject: Annotated[str | None, Query(max_length=16)] = None,
    subject_id: schemas.SubjectFilter = None,
    action: Annotated[str | None, Query(max_length=32)] = None,
    limit: schemas.Limit = 100,
    offset: schemas.Offset = 0,
) -> list[WorkflowEvent]:
    """The audit trail, newest first, optionally of one subject (and object) or action."""
    query = select(WorkflowEvent)
    for column, value in ((WorkflowEvent.subject, subject), (WorkflowEvent.subject_id, subject_id)):
        if value is not None:
            query = query.where(column == value)
    if action:
        query = query.where(WorkflowEvent.action == action)
    return list(sess.scalars(query.order_by(WorkflowEvent.id.desc()).limit(limit).offset(offset)))


health = APIRouter(tags=["health"])


# HEAD too (undocumented, as HTTP implies it): uptime monitors often ask so, and a 405 reads as "down".
@health.get("/healthz")
@health.head("/healthz", include_in_schema=False)
async def healthz() -> dict:
    """The process answers."""
    return {"status": "ok"}


@health.get("/readyz", responses={503: {"model": schemas.ErrorOut}})
@health.head("/readyz", include_in_schema=False)
def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is current."""
    try:
        revision = migrate.current_revision(request.app.state.engine)
    except Exception:  # noqa: BLE001
        # The cause (host, driver message) is for the operator's log, not for whoever asks.
        log.warning("readyz: the database does not answer", exc_info=True)
        return JSONResponse({"error": "not_ready", "detail": "database unavailable"}, status_code=503)
    if revision != migrate.head_revision():
        detail = f"schema at {revision}, code expects {migrate.head_revision()}"
        return JSONResponse({"error": "not_ready", "detail": detail}, status_code=503)
    return JSONResponse({"status": "ready", "schema": revision})
