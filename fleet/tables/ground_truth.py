"""Simulated or replayed fleets whose ground truth is stored (their failures are labels: `Label`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleet.tables.base import Base, Json, UtcDateTime, utcnow


class SimulationRunRecord(Base):
    """One simulated (or replayed) fleet whose ground truth is stored; `digest` identifies its config."""

    __tablename__ = "simulation_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    seed: Mapped[int | None] = mapped_column(BigInteger)
    config: Mapped[dict] = mapped_column(Json)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
