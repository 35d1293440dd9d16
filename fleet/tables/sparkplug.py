"""What a Sparkplug B host knows of an edge node between messages: birth, aliases and sequence."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fleet.tables.base import Base, Json, UtcDateTime, utcnow


class _OneHostsNode:
    """Keyed by host and edge node."""

    host_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    edge_node: Mapped[str] = mapped_column(String(128), primary_key=True)


class SparkplugNode(_OneHostsNode, Base):
    """One host's state of one edge node, written in the transaction that stores that node's data."""

    __tablename__ = "sparkplug_nodes"
    state: Mapped[dict] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SparkplugBirths(_OneHostsNode, Base):
    """What one edge node's births declared to one host (aliases, signed metrics, each device's): written only
    with a birth, not with each batch of data as the node's state is."""

    __tablename__ = "sparkplug_births"
    births: Mapped[dict] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SparkplugCredential(Base):
    """Broker identity of an edge node (`spBv1.0/{group}/{edge node}`) or a host (`spBv1.0/STATE/{host}`)."""

    __tablename__ = "sparkplug_credentials"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(300), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
