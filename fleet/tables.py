"""Tables of the shared kernel: the fleet register, data-use grants, telemetry and quarantine."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Json = JSON().with_variant(JSONB(), "postgresql")
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; servicecast stores only timezone-aware UTC timestamps")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with stable constraint names for migrations."""

    metadata = MetaData(naming_convention=NAMING)


class Customer(Base):
    """A business customer of the OEM; also the tenant of its machines' data."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    auto_registered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Site(Base):
    """A place where a customer runs machines."""

    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("customer_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(String(200))


class Machine(Base):
    """A machine sold to a customer; `code` is its id in the MQTT topic."""

    __tablename__ = "machines"
    __table_args__ = (UniqueConstraint("customer_id", "code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    code: Mapped[str] = mapped_column(String(128))
    machine_type: Mapped[str] = mapped_column(String(64), default="unknown")
    serial: Mapped[str | None] = mapped_column(String(128))
    installed: Mapped[date | None] = mapped_column(Date)
    contract_tier: Mapped[str] = mapped_column(String(32), default="basic")
    auto_registered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Sensor(Base):
    """A sensor of a machine with its unit and operating limits."""

    __tablename__ = "sensors"
    __table_args__ = (UniqueConstraint("machine_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str | None] = mapped_column(String(32))
    low_limit: Mapped[float | None] = mapped_column(Float)
    high_limit: Mapped[float | None] = mapped_column(Float)


class DataUseGrant(Base):
    """What a customer allows its machine data to be used for (`service`, `offers`)."""

    __tablename__ = "data_use_grants"
    __table_args__ = (Index("ix_grants_customer_purpose", "customer_id", "purpose"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    granted_by: Mapped[str | None] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Telemetry(Base):
    """One message of one machine; `(customer_id, machine_id, seq)` makes writes idempotent."""

    __tablename__ = "telemetry"
    __table_args__ = (Index("ix_telemetry_machine_ts", "machine_id", "ts"),)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    readings: Mapped[dict] = mapped_column(Json)
    fw: Mapped[str | None] = mapped_column(String(64))
    extra: Mapped[dict | None] = mapped_column(Json)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Quarantine(Base):
    """A message that could not be stored, kept byte for byte with the reason, for replay."""

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    replayed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SimulationRunRecord(Base):
    """One simulated (or replayed) fleet whose ground truth is stored; `digest` identifies its config."""

    __tablename__ = "simulation_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    seed: Mapped[int | None] = mapped_column(BigInteger)
    config: Mapped[dict] = mapped_column(Json)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class FailureEvent(Base):
    """Ground truth: a machine failed at `ts` in `mode`, degrading since `onset` if it had a precursor."""

    __tablename__ = "failure_events"
    __table_args__ = (
        UniqueConstraint("run_id", "machine_id", "ts"),
        Index("ix_failure_events_machine_ts", "machine_id", "ts"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("simulation_runs.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    mode: Mapped[str] = mapped_column(String(64))
    has_precursor: Mapped[bool] = mapped_column(Boolean)
    onset: Mapped[datetime | None] = mapped_column(UtcDateTime)
    repaired: Mapped[datetime | None] = mapped_column(UtcDateTime)


class MaintenanceEvent(Base):
    """Ground truth: a preventive visit or a repair from `ts` to `end`, and the wear mode it found."""

    __tablename__ = "maintenance_events"
    __table_args__ = (
        UniqueConstraint("run_id", "machine_id", "ts", "kind"),
        Index("ix_maintenance_events_machine_ts", "machine_id", "ts"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("simulation_runs.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    end: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    found_mode: Mapped[str | None] = mapped_column(String(64))
