"""What a Sparkplug B host knows of an edge node between messages: birth, aliases and sequence."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from fleet.tables.base import Base, Json, UtcDateTime


class SparkplugNode(Base):
    """One host's state of one edge node, written in the transaction that stores that node's data."""

    __tablename__ = "sparkplug_nodes"
    host_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    edge_node: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[dict] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
