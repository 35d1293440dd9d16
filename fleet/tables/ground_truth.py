"""Ground truth of simulated or replayed fleets: runs, failure and maintenance events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleet.tables.base import Base, BigId, Json, UtcDateTime, utcnow


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
