"""Alarm and error codes machines send on their events topic."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fleet.tables.base import Base, Json, UtcDateTime


class MachineEvent(Base):
    """One event message of one machine; `(customer_id, machine_id, seq)` makes writes idempotent."""

    __tablename__ = "machine_events"
    __table_args__ = (Index("ix_machine_events_machine_ts", "machine_id", "ts"),)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    code: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict | None] = mapped_column(Json)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
