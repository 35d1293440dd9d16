"""Telemetry rows and the quarantine of messages that could not be stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleet.tables.base import Base, BigId, Json, UtcDateTime


class Telemetry(Base):
    """One message of one machine; `(customer_id, machine_id, seq)` makes writes idempotent.

    On PostgreSQL the table is partitioned by week of `ts` and its primary key holds `ts` too (migration
    0019, `fleet.partitions`); the write path (`fleet.dialect.insert_new`) keeps the three-column key unique.
    """

    __tablename__ = "telemetry"
    __table_args__ = (
        Index("ix_telemetry_machine_ts", "machine_id", "ts"),
        # The scorer's watermark: the newest arrival per machine, a time the device cannot set.
        Index("ix_telemetry_machine_received", "machine_id", "received_at"),
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    readings: Mapped[dict] = mapped_column(Json)
    fw: Mapped[str | None] = mapped_column(String(64))
    extra: Mapped[dict | None] = mapped_column(Json)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Quarantine(Base):
    """A message that could not be stored, kept byte for byte with the reason, for replay.

    Of a `too_large` message only a prefix is kept: `original_size` then says how large it was, and such a
    row cannot be replayed.
    """

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    original_size: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    replayed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
