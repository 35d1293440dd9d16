"""Customers, machines, telemetry and predictions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from api import schemas, telemetry_view
from api.deps import Admin, FleetReader, SessionDep, TelemetryReader
from api.errors import ConsentMissing
from api.offers import withdraw_for_customer
from api.scope import get_visible, restrict
from fleet import registry
from fleet.tables import Customer, Machine, Prediction, utcnow

router = APIRouter(tags=["fleet"])
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


def _customer_out(sess, customer: Customer) -> schemas.CustomerOut:
    out = schemas.CustomerOut.model_validate(customer)
    out.purposes = sorted(registry.purposes_of(sess, customer.id))
    return out


@router.get("/customers", response_model=list[schemas.CustomerOut])
def list_customers(sess: SessionDep, who: FleetReader, limit: Limit = 100, offset: Offset = 0):
    """Customers the caller may see."""
    query = restrict(select(Customer), Customer.id, who).order_by(Customer.id).limit(limit).offset(offset)
    return [_customer_out(sess, c) for c in sess.scalars(query)]


@router.get("/customers/{customer_id}", response_model=schemas.CustomerOut)
def get_customer(customer_id: schemas.CustomerId, sess: SessionDep, who: FleetReader):
    """One customer with its data-use grants."""
    return _customer_out(sess, get_visible(sess, Customer, customer_id, who, "customer"))


@router.put("/customers/{customer_id}/grants/{purpose}", response_model=schemas.CustomerOut)
def grant(
    customer_id: schemas.CustomerId,
    purpose: schemas.Purpose,
    sess: SessionDep,
    who: Admin,
):
    """Record that the customer allows this use of its data (idempotent)."""
    customer = get_visible(sess, Customer, customer_id, who, "customer")
    registry.grant_purpose(sess, customer.id, purpose, who.name)
    return _customer_out(sess, customer)


@router.delete("/customers/{customer_id}/grants/{purpose}", response_model=schemas.CustomerOut)
def revoke(
    customer_id: schemas.CustomerId,
    purpose: schemas.Purpose,
    sess: SessionDep,
    who: Admin,
):
    """Revoke a use; revoking `offers` withdraws offers not yet sent. `service` cannot be revoked here."""
    customer = get_visible(sess, Customer, customer_id, who, "customer")
    if purpose == "service":
        raise ConsentMissing(
            "revoking 'service' stops servicecast for this customer; ask for erasure instead"
        )
    registry.revoke_purpose(sess, customer.id, purpose)
    withdraw_for_customer(sess, customer.id, f"{purpose} consent revoked by {who.name}")
    return _customer_out(sess, customer)


@router.get("/machines", response_model=list[schemas.MachineOut])
def list_machines(
    sess: SessionDep,
    who: FleetReader,
    customer_id: schemas.CustomerFilter = None,
    machine_type: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
):
    """Machines the caller may see, with their latest prediction."""
    query = restrict(select(Machine), Machine.customer_id, who)
    if customer_id is not None:
        query = query.where(Machine.customer_id == customer_id)
    if machine_type:
        query = query.where(Machine.machine_type == machine_type)
    machines = sess.scalars(query.order_by(Machine.id).limit(limit).offset(offset)).all()
    return [_machine_out(sess, m) for m in machines]


def _machine_out(sess, machine: Machine) -> schemas.MachineOut:
    out = schemas.MachineOut.model_validate(machine)
    latest = sess.scalar(
        select(Prediction).where(Prediction.machine_id == machine.id).order_by(Prediction.id.desc()).limit(1)
    )
    if latest is not None:
        out.risk, out.failure_mode, out.predicted_at = latest.risk, latest.failure_mode, latest.ts
    return out


@router.get("/machines/{machine_id}", response_model=schemas.MachineOut)
def get_machine(machine_id: schemas.MachineId, sess: SessionDep, who: FleetReader):
    """One machine with its latest prediction."""
    return _machine_out(sess, get_visible(sess, Machine, machine_id, who, "machine"))


@router.get("/machines/{machine_id}/telemetry", response_model=schemas.TelemetryOut)
def machine_telemetry(
    machine_id: schemas.MachineId,
    sess: SessionDep,
    who: TelemetryReader,
    start: datetime | None = None,
    end: datetime | None = None,
    max_points: Annotated[int, Query(ge=10, le=5000)] = 500,
):
    """Telemetry over [start, end) (default: 24 h), averaged into at most `max_points` buckets."""
    machine = get_visible(sess, Machine, machine_id, who, "machine")
    day = timedelta(days=1)
    if end is None:
        end = telemetry_view.shift(telemetry_view.aware(start), day) if start else utcnow()
    end = telemetry_view.aware(end)
    start = telemetry_view.aware(start) if start else telemetry_view.shift(end, -day)
    return telemetry_view.window(sess, machine.id, start, end, max_points)


@router.get("/machines/{machine_id}/predictions", response_model=list[schemas.PredictionOut])
def machine_predictions(
    machine_id: schemas.MachineId, sess: SessionDep, who: FleetReader, limit: Limit = 100
):
    """The machine's prediction history, newest first."""
    machine = get_visible(sess, Machine, machine_id, who, "machine")
    query = select(Prediction).where(Prediction.machine_id == machine.id).order_by(Prediction.id.desc())
    return sess.scalars(query.limit(limit)).all()
