"""Machine types as data: every applied definition of a type, one row per version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fleet.tables.base import Base, Json, UtcDateTime, utcnow


class MachineTypeVersion(Base):
    """One version of a machine type's definition (sensors, components, failure modes, codes).

    Rows are never changed: applying a changed definition adds the next version, so what a type said
    when data were stored stays readable.
    """

    __tablename__ = "machine_type_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict] = mapped_column(Json)
    source: Mapped[str | None] = mapped_column(String(255))
    applied_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
