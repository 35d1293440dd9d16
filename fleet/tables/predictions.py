"""Model output: registered model versions, predictions per machine, and the scorer's watermark."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fleet.tables.base import Base, BigId, Json, UtcDateTime, utcnow


class ModelVersion(Base):
    """A trained model artifact with its data window, parameters and evaluation; one active per type."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("version"),
        Index("ix_model_versions_type_active", "machine_type", "active"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    machine_type: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    train_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    train_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    params: Mapped[dict] = mapped_column(Json, default=dict)
    metrics: Mapped[dict] = mapped_column(Json, default=dict)
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    promoted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The live alert threshold: chosen on the training window, backtested, read by the policy.
    threshold: Mapped[float | None] = mapped_column(Float)
    comparison: Mapped[dict | None] = mapped_column(Json)  # candidate vs champion on a held-out window
    # Set when data it was trained on was erased: the console shows that it needs retraining.
    retrain_reason: Mapped[str | None] = mapped_column(Text)


class Prediction(Base):
    """One scoring of one machine: risk within the horizon, RUL with interval, forecast ETA, evidence."""

    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_machine_ts", "machine_id", "ts"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(32), default="ok")
    horizon_hours: Mapped[float | None] = mapped_column(Float)
    risk: Mapped[float | None] = mapped_column(Float)
    failure_mode: Mapped[str | None] = mapped_column(String(64))  # the most likely one
    # Every mode `models.modes.likely` names, [{mode, share}] most likely first; None without a mode model.
    likely_modes: Mapped[list | None] = mapped_column(Json)
    rul_hours: Mapped[float | None] = mapped_column(Float)
    rul_low: Mapped[float | None] = mapped_column(Float)
    rul_high: Mapped[float | None] = mapped_column(Float)
    eta: Mapped[datetime | None] = mapped_column(UtcDateTime)
    eta_low: Mapped[datetime | None] = mapped_column(UtcDateTime)
    eta_high: Mapped[datetime | None] = mapped_column(UtcDateTime)
    eta_sensor: Mapped[str | None] = mapped_column(String(64))
    anomaly_score: Mapped[float | None] = mapped_column(Float)
    contributions: Mapped[list | None] = mapped_column(Json)
    explanation: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(64))


class ScoreState(Base):
    """How far the scorer has read each machine's telemetry, so a restart rescans nothing twice."""

    __tablename__ = "score_state"
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), primary_key=True)
    # Newest `received_at` (the ingester's clock) scored: a device's seq or ts cannot move it.
    last_received_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    scored_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
