"""A change counter per watched table, raised by database triggers, so readers can cache against it."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from fleet.tables.base import Base


class ChangeCounter(Base):
    """How many rows of a table have been written: it only grows, in the same transaction as the rows.

    Triggers raise it on every insert, update and delete; migration 0005 watches `alerts`.
    """

    __tablename__ = "change_counters"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
