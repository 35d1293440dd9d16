"""The one label store: failures, replacements, maintenance, no-fault findings, visits; from any source."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fleet.tables.base import Base, BigId, UtcDateTime, utcnow

LABEL_KINDS = ("failure", "replacement", "maintenance", "no_fault", "visit")
LABEL_SOURCES = ("simulator", "import", "finding", "migration")  # migration: 0032's visit labels


class Label(Base):
    """One labelled event of a machine at `ts`; `ref` says where it came from (run, file line, alert)."""

    __tablename__ = "labels"
    __table_args__ = (
        # The natural key: the machine implies its tenant; "" is "no component stated".
        UniqueConstraint("machine_id", "ts", "kind", "component"),
        Index("ix_labels_customer_id", "customer_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(16))
    component: Mapped[str] = mapped_column(String(64), default="")
    mode: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(300))
    activity: Mapped[str | None] = mapped_column(String(64))
    precursor: Mapped[bool | None] = mapped_column(Boolean)
    onset: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
