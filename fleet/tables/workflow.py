"""The service workflow: users and API keys, alerts for field service, offers for sales, the outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fleet.tables.base import Base, BigId, Json, UtcDateTime, utcnow

# What a user may do: staff roles see every customer (an account manager its accounts), `customer` its own.
ROLES = ("admin", "field_service", "account_manager", "customer")


class User(Base):
    """A person who uses the API; `customer_id` is set for the `customer` role only."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AccountAssignment(Base):
    """An account manager looks after this customer."""

    __tablename__ = "account_assignments"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)


class ApiKey(Base):
    """An API key, stored as a SHA-256 of its secret part; the prefix finds the row."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


# The failure mode stored on an alert or offer whose prediction named none; its texts word it as "signs of a
# coming failure" (models.modes.name).
UNNAMED_MODE = "unknown"


def named_mode(stored: str | None) -> str | None:
    """The failure mode an alert or offer row names, None for `UNNAMED_MODE`."""
    return None if stored == UNNAMED_MODE else stored


class Alert(Base):
    """A field-service alert: one open alert per machine and failure mode, updated while it stays open."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_customer_status", "customer_id", "status"),
        Index("ix_alerts_machine_mode_status", "machine_id", "failure_mode", "status"),
        # The queue order (most severe, then nearest), so a page of the queue is an index walk, not a sort.
        Index("ix_alerts_queue", "severity_rank", "lead_rank", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    failure_mode: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    # Place in the field-service queue (1 critical, 2 high, 3 medium); the column keeps its first name.
    queue_rank: Mapped[int] = mapped_column("severity_rank", Integer, default=3)
    status: Mapped[str] = mapped_column(String(16), default="open")
    risk: Mapped[float] = mapped_column(Float)
    lead_time_hours: Mapped[float | None] = mapped_column(Float)
    lead_rank: Mapped[float] = mapped_column(Float, default=1e9)
    eta: Mapped[datetime | None] = mapped_column(UtcDateTime)
    evidence: Mapped[dict] = mapped_column(Json, default=dict)
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_prediction_id: Mapped[int | None] = mapped_column(ForeignKey("predictions.id", ondelete="SET NULL"))
    last_prediction_id: Mapped[int | None] = mapped_column(ForeignKey("predictions.id", ondelete="SET NULL"))
    model_version: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finding: Mapped[str | None] = mapped_column(String(32))
    finding_text: Mapped[str | None] = mapped_column(Text)
    parts_used: Mapped[list | None] = mapped_column(Json)


class Offer(Base):
    """A proactive service offer proposed to an account manager, and what became of it."""

    __tablename__ = "offers"
    __table_args__ = (
        Index("ix_offers_customer_status", "customer_id", "status"),
        Index("ix_offers_machine_item_status", "machine_id", "catalog_item", "status"),
        Index("ix_offers_status_expires", "status", "expires_at"),  # the policy's sweep of open offers
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    prediction_id: Mapped[int | None] = mapped_column(ForeignKey("predictions.id", ondelete="SET NULL"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    failure_mode: Mapped[str] = mapped_column(String(64))
    catalog_item: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    price: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))  # the offer's catalog's, always given: never assumed
    expected_value: Mapped[float] = mapped_column(Float)
    risk: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    model_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    outcome_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revenue: Mapped[float | None] = mapped_column(Float)
    outcome_reason: Mapped[str | None] = mapped_column(Text)
    # The offer policy's log: what it saw, what it could have chosen, and how likely this choice was.
    language: Mapped[str | None] = mapped_column(String(8))
    catalog_version: Mapped[int | None] = mapped_column(Integer)
    list_price: Mapped[float | None] = mapped_column(Float)
    price_level: Mapped[int | None] = mapped_column(Integer)
    policy: Mapped[str | None] = mapped_column(String(32))
    propensity: Mapped[float | None] = mapped_column(Float)
    context: Mapped[dict | None] = mapped_column(Json)
    alternatives: Mapped[list | None] = mapped_column(Json)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WorkflowEvent(Base):
    """The audit trail: who did what to which object and when, with the values before and after."""

    # Append-only: triggers refuse UPDATE and DELETE (migration 0009). `actor_id` is no foreign key and
    # `actor` keeps the name, so a row outlives the user it names (and no ON DELETE ever updates it).

    __tablename__ = "workflow_events"
    __table_args__ = (Index("ix_workflow_events_subject", "subject", "subject_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(16))  # alert, offer, customer, user, api_key, model_version
    subject_id: Mapped[int | None] = mapped_column(BigId)
    action: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    data: Mapped[dict] = mapped_column(Json, default=dict)
    before: Mapped[dict | None] = mapped_column(Json)
    after: Mapped[dict | None] = mapped_column(Json)


class OutboxMessage(Base):
    """An event to deliver (written in the same transaction as the decision); the router sends it once."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("event_id", "destination"),
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(128))
    destination: Mapped[str] = mapped_column(String(32))
    # None: the customer.erased event, which outlives its customer.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"))
    payload: Mapped[dict] = mapped_column(Json)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Watermark(Base):
    """How far a background stage has read an append-only table (e.g. the alert policy over predictions)."""

    __tablename__ = "watermarks"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigId, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
