"""Customers, machines, telemetry and predictions."""

from __future__ import annotations

import contextlib
import inspect
from datetime import datetime, timedelta
from typing import Annotated, get_type_hints

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import bindparam, func, select
from starlette.routing import Route

from api import schemas, telemetry_view
from api.deps import (
    Admin,
    ConnectionDep,
    FleetReader,
    ReaderDep,
    ReadRoute,
    SessionDep,
    SettingsDep,
    TelemetryConnection,
    TelemetryReader,
    bearer,
    refuse_repeated_query,
    releasing,
    telemetry_connection,
)
from api.offers import hide_risk, revoke_consent, risk_scope
from api.routers import columns, json_response
from api.scope import get_visible, require_visible, restrict
from fleet import erasure, registry
from fleet.settings import Settings
from fleet.tables import Customer, Machine, Prediction, utcnow

router = APIRouter(tags=["fleet"], route_class=ReadRoute)


def _customer_out(sess, customer: Customer) -> schemas.CustomerOut:
    out = schemas.CustomerOut.model_validate(customer)
    out.purposes = sorted(registry.purposes_of(sess, customer.id))
    out.assumed = sorted(registry.assumed_by_customer(sess, [customer.id])[customer.id])
    out.erasure_unfinished = erasure.to_finish(sess.connection(), [customer]).get(customer.id)
    return out


# Every route that queries is a plain `def`: FastAPI runs it in its thread pool, off the event loop.
@router.get("/customers", response_model=list[schemas.CustomerOut])
def list_customers(sess: ReaderDep, who: FleetReader, limit: schemas.Limit = 100, offset: schemas.Offset = 0):
    """Customers the caller may see."""
    query = restrict(select(Customer), Customer.id, who).order_by(Customer.id).limit(limit).offset(offset)
    return [_customer_out(sess, c) for c in sess.scalars(query)]


@router.get("/customers/{customer_id}", response_model=schemas.CustomerOut)
def get_customer(customer_id: schemas.CustomerId, sess: ReaderDep, who: FleetReader):
    """One customer with its data-use grants."""
    return _customer_out(sess, get_visible(sess, Customer, customer_id, who, "customer"))


@router.put("/customers/{customer_id}/grants/{purpose}", response_model=schemas.CustomerOut)
def grant(
    customer_id: schemas.CustomerId,
    purpose: schemas.Purpose,
    sess: SessionDep,
    who: Admin,
    reference: schemas.Reference = None,
):
    """Record that the customer allows this use of its data (idempotent); `reference`: its declaration."""
    customer = get_visible(sess, Customer, customer_id, who, "customer")
    registry.grant_purpose(sess, customer_id=customer.id, purpose=purpose, by=who, reference=reference)
    return _customer_out(sess, customer)


@router.delete("/customers/{customer_id}/grants/{purpose}", response_model=schemas.CustomerOut)
def revoke(
    customer_id: schemas.CustomerId,
    purpose: schemas.Purpose,
    sess: SessionDep,
    who: Admin,
    reference: schemas.Reference = None,
):
    """Revoke a use; revoking `offers` withdraws open offers (the CRM hears by ids only). Not `service`."""
    customer = get_visible(sess, Customer, customer_id, who, "customer")
    revoke_consent(sess, customer.id, purpose, who, reference=reference)
    return _customer_out(sess, customer)


# A machine and its latest prediction in one Core query on the tables (no ORM objects, no query per
# machine); built once, so SQLAlchemy finds its compiled form without walking it again per request.
_M, _P = Machine.__table__, Prediction.__table__
_LATEST = select(func.max(_P.c.id)).where(_P.c.machine_id == _M.c.id).correlate(_M).scalar_subquery()
MACHINES = select(
    *columns(schemas.MachineOut, _M),
    _P.c.risk,
    _P.c.failure_mode,
    _P.c.ts.label("predicted_at"),
).outerjoin(_P, _P.c.id == _LATEST)
MACHINE_BY_ID = MACHINES.where(_M.c.id == bindparam("machine_id"))
MACHINE_OWNER = select(_M.c.customer_id).where(_M.c.id == bindparam("machine_id"))


@router.get("/machines", response_model=list[schemas.MachineOut])
def list_machines(
    conn: ConnectionDep,
    who: FleetReader,
    customer_id: schemas.CustomerFilter = None,
    machine_type: Annotated[str | None, Query(max_length=64)] = None,
    limit: schemas.Limit = 100,
    offset: schemas.Offset = 0,
):
    """Machines the caller may see, with their latest prediction (an account manager's only with consent)."""
    query = restrict(MACHINES, _M.c.customer_id, who)
    if customer_id is not None:
        query = query.where(_M.c.customer_id == customer_id)
    if machine_type:
        query = query.where(_M.c.machine_type == machine_type)
    rows = conn.execute(query.order_by(_M.c.id).limit(limit).offset(offset)).all()
    scope = risk_scope(conn, who)
    return [hide_risk(row._asdict(), scope) for row in rows]


@router.get("/machines/{machine_id}", response_model=schemas.MachineOut)
def get_machine(machine_id: schemas.MachineId, conn: ConnectionDep, who: FleetReader):
    """One machine with its latest prediction."""
    row = conn.execute(MACHINE_BY_ID, {"machine_id": machine_id}).first()
    require_visible(None if row is None else row.customer_id, who, "machine", machine_id)
    return json_response(schemas.MachineOut, hide_risk(row._asdict(), risk_scope(conn, who)))


TELEMETRY_PATH = "/machines/{machine_id}/telemetry"


def document_limits(schema: dict, *, settings: Settings, prefix: str) -> None:
    """Write the configured `max_points` limit into the OpenAPI schema, where clients and fuzzers read it."""
    for parameter in schema["paths"][prefix + TELEMETRY_PATH]["get"]["parameters"]:
        if parameter["name"] == "max_points":
            parameter["schema"]["maximum"] = settings.api_telemetry_max_points


@router.get(TELEMETRY_PATH, response_model=schemas.TelemetryOut)
def machine_telemetry(
    machine_id: schemas.MachineId,
    who: TelemetryReader,
    settings: SettingsDep,
    conn: TelemetryConnection,
    start: datetime | None = None,
    end: datetime | None = None,
    max_points: schemas.MaxPoints = 500,
):
    """Telemetry over [start, end) (default: 24 h), averaged into at most `max_points` buckets; a start
    after the end is refused (422).

    The window and `max_points` are limited by SERVICECAST_API_TELEMETRY_MAX_WINDOW_DAYS and
    SERVICECAST_API_TELEMETRY_MAX_POINTS (422 beyond them).
    """
    day = timedelta(days=1)
    if end is None:
        end = telemetry_view.shift(telemetry_view.aware(start), day) if start else utcnow()
    end = telemetry_view.aware(end)
    start = telemetry_view.aware(start) if start else telemetry_view.shift(end, -day)
    telemetry_view.check_limits(start=start, end=end, max_points=max_points, settings=settings)
    owner = conn.execute(MACHINE_OWNER, {"machine_id": machine_id}).scalar()
    require_visible(owner, who, "machine", machine_id)
    body = telemetry_view.window_json(
        conn.connection(),
        machine_id=machine_id,
        start=start,
        end=end,
        max_points=max_points,
        archive_url=settings.archive_url,  # long windows from rollups, archived rows included
    )
    return Response(body, media_type="application/json")  # what response_model documents, built once


# The same route without FastAPI's per-request work (issue 14 Must-show 2): mounted before the FastAPI routes,
# it answers every GET of the path; the FastAPI route stays registered for the OpenAPI document. It takes the
# caller, the parameters and the slot the way the FastAPI route does and calls `machine_telemetry` itself in
# one thread-pool hop, without FastAPI's dependency solving and parameter handling around it.
_TELEMETRY_READER = TelemetryReader.__metadata__[0].dependency
_TELEMETRY_SLOT = contextlib.asynccontextmanager(telemetry_connection)
_TELEMETRY_CALL = releasing(machine_telemetry)


def _parameters(endpoint, where: list[tuple[str, str]]) -> list[tuple[str, str, TypeAdapter, object]]:
    """(location, name, validator, default) of each of the endpoint's parameters named in `where`."""
    hints = get_type_hints(endpoint, include_extras=True)
    signature = inspect.signature(endpoint).parameters
    return [(place, name, TypeAdapter(hints[name]), signature[name].default) for place, name in where]


# In FastAPI's order: the path, then the query in the signature's order (its 422 names the first problem).
_TELEMETRY_PARAMETERS = _parameters(
    machine_telemetry, [("path", "machine_id"), ("query", "start"), ("query", "end"), ("query", "max_points")]
)


def _telemetry_arguments(request: Request) -> dict:
    """The parameters validated by the FastAPI route's own types; a RequestValidationError as FastAPI's."""
    values, problems = {}, []
    for place, name, adapter, default in _TELEMETRY_PARAMETERS:
        raw = (request.path_params if place == "path" else request.query_params).get(name)
        if raw is None:
            values[name] = default
            continue
        try:
            values[name] = adapter.validate_python(raw)
        except ValidationError as exc:
            problems += [{**error, "loc": (place, name, *error["loc"])} for error in exc.errors()]
    if problems:
        raise RequestValidationError(problems)
    return values


async def fast_machine_telemetry(request: Request) -> Response:
    """GET {prefix}/machines/{machine_id}/telemetry, answered as the FastAPI route answers it."""
    await refuse_repeated_query(request)  # the app's dependency, first as there
    who = await _TELEMETRY_READER(request, await bearer(request))
    arguments = _telemetry_arguments(request)
    settings = request.app.state.settings
    async with _TELEMETRY_SLOT(request) as conn:  # closed in the thread too (`releasing`), before the answer
        return await run_in_threadpool(_TELEMETRY_CALL, who=who, settings=settings, conn=conn, **arguments)


def fast_telemetry_route(prefix: str) -> Route:
    """`fast_machine_telemetry` as a plain route, for GET only (HEAD is refused, as FastAPI's route does)."""
    route = Route(prefix + TELEMETRY_PATH, fast_machine_telemetry, methods=["GET"], include_in_schema=False)
    route.methods = {"GET"}
    return route


@router.get("/machines/{machine_id}/predictions", response_model=list[schemas.PredictionOut])
def machine_predictions(
    machine_id: schemas.MachineId, sess: ReaderDep, who: FleetReader, limit: schemas.Limit = 100
):
    """The machine's prediction history, newest first."""
    machine = get_visible(sess, Machine, machine_id, who, "machine")
    if not risk_scope(sess, who).sees(machine.customer_id):
        return []
    query = select(Prediction).where(Prediction.machine_id == machine.id).order_by(Prediction.id.desc())
    return sess.scalars(query.limit(limit)).all()
