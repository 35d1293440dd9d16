"""The fleet register: customers (tenants), sites, machines, sensors and data-use grants."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleet.tables.base import Base, UtcDateTime, utcnow


class Customer(Base):
    """A business customer of the OEM; also the tenant of its machines' data."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    auto_registered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    segment: Mapped[str | None] = mapped_column(String(32))  # a catalog segment (its price points)
    language: Mapped[str | None] = mapped_column(String(8))  # of its offers' text: en, de


class Site(Base):
    """A place where a customer runs machines."""

    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("customer_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(String(200))
    # IANA name; the models compare readings with the same local hour of earlier days (None: UTC)
    timezone: Mapped[str | None] = mapped_column(String(64))


class Machine(Base):
    """A machine sold to a customer; `code` is its id in the MQTT topic."""

    __tablename__ = "machines"
    __table_args__ = (UniqueConstraint("customer_id", "code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    code: Mapped[str] = mapped_column(String(128))
    machine_type: Mapped[str] = mapped_column(String(64), default="unknown")
    serial: Mapped[str | None] = mapped_column(String(128))
    installed: Mapped[date | None] = mapped_column(Date)
    contract_tier: Mapped[str] = mapped_column(String(32), default="basic")
    auto_registered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Sensor(Base):
    """A sensor of a machine with its unit and operating limits."""

    __tablename__ = "sensors"
    __table_args__ = (UniqueConstraint("machine_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str | None] = mapped_column(String(32))
    low_limit: Mapped[float | None] = mapped_column(Float)
    high_limit: Mapped[float | None] = mapped_column(Float)


# service: running the service at all; offers: sales use; product_improvement: pooling the customer's
# telemetry into models that also serve other customers.
PURPOSES = ("service", "offers", "product_improvement")


class DataUseGrant(Base):
    """What a customer allows its machine data to be used for (`service`, `offers`)."""

    __tablename__ = "data_use_grants"
    __table_args__ = (Index("ix_grants_customer_purpose", "customer_id", "purpose"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    granted_by: Mapped[str | None] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # True when nobody declared it: auto-registration assumes `service` so that a demo device's data is kept.
    assumed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class MachineCredential(Base):
    """A machine's own broker identity: its MQTT user name and a Mosquitto hash of its password."""

    __tablename__ = "machine_credentials"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), unique=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
