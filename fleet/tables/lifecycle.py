"""Data lifecycle: telemetry rollups and their dirty log, the Parquet archive's files and keys, erasures."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleet.tables.base import Base, BigId, Json, UtcDateTime


class Rollup(Base):
    """Count, sum, min, max and last of one sensor of one machine over one bucket of `width_s` seconds."""

    __tablename__ = "telemetry_rollups"
    __table_args__ = (Index("ix_telemetry_rollups_customer_id", "customer_id"),)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), primary_key=True)
    width_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    sensor: Mapped[str] = mapped_column(String(128), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    n: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[float | None] = mapped_column(Float)
    lo: Mapped[float | None] = mapped_column(Float)
    hi: Mapped[float | None] = mapped_column(Float)
    last_ts: Mapped[datetime] = mapped_column(UtcDateTime)
    last: Mapped[float | None] = mapped_column(Float)


class RollupDirty(Base):
    """An hour of a machine whose rows changed since its rollups were computed (an insert trigger logs it)."""

    __tablename__ = "rollup_dirty"
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))


class ArchiveFile(Base):
    """One Parquet file of archived telemetry of one customer and month; readers list files only from here."""

    __tablename__ = "archive_files"
    __table_args__ = (Index("ix_archive_files_customer_id", "customer_id", "ts_min"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    month: Mapped[str] = mapped_column(String(7))
    path: Mapped[str] = mapped_column(Text, unique=True)
    rows: Mapped[int] = mapped_column(BigInteger)
    readings: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    ts_min: Mapped[datetime] = mapped_column(UtcDateTime)
    ts_max: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ArchiveStore(Base):
    """This database's archive id (one row): its files lie under `store=<id>/`, apart from others'."""

    __tablename__ = "archive_store"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    store: Mapped[str] = mapped_column(String(32))
    # The token the folder's marker file holds since this database's last archive run, and the one a run is
    # writing (`fleet.archive_store.claim`): a marker holding neither was written by another database.
    token: Mapped[str | None] = mapped_column(String(32))
    pending: Mapped[str | None] = mapped_column(String(32))
    # The identity of the database that drew the store id or claimed the folder since (`fleet.archive_owner`):
    # a copy of this database holds it too, but is another database.
    owner: Mapped[str | None] = mapped_column(Text)


class ArchivedRange(Base):
    """Seqs `seq_lo`, `seq_lo + seq_step`, … `seq_hi` of a machine, all archived: the idempotency keys of rows
    moved to Parquet; the seqs between them are not archived."""

    __tablename__ = "archived_ranges"
    # The insert trigger looks for runs ending at or after a seq: none for a new message's.
    __table_args__ = (Index("ix_archived_ranges_machine_id_seq_hi", "machine_id", "seq_hi"),)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), primary_key=True)
    seq_lo: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq_hi: Mapped[int] = mapped_column(BigInteger)
    seq_step: Mapped[int] = mapped_column(BigInteger, server_default=text("1"))
    file_id: Mapped[int] = mapped_column(ForeignKey("archive_files.id", ondelete="CASCADE"), index=True)


class ErasureReceipt(Base):
    """What an erasure removed per data class, under the pseudonym that replaced the customer in the audit."""

    __tablename__ = "erasure_receipts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by: Mapped[str] = mapped_column(String(200))
    counts: Mapped[dict] = mapped_column(Json)
    kept: Mapped[dict] = mapped_column(Json)  # what could not be erased, and why
    # The erasure ledger's entry and its store folder (erasure_ledger.write): an archive folder put back from
    # an older copy gets it back. None for an erasure of late messages only, and before migration 0034.
    ledger: Mapped[dict | None] = mapped_column(Json, nullable=True)


class ErasureNotice(Base):
    """An erasure the CRM must be told of at one destination, which the customer's offer events were queued
    for. Written with the receipt, in the erasure's transaction; a router with that destination turns it into
    the `customer.erased` outbox row and deletes it."""

    __tablename__ = "erasure_notices"
    __table_args__ = (
        UniqueConstraint("receipt_id", "destination", name="uq_erasure_notices_receipt_id_destination"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    receipt_id: Mapped[int] = mapped_column(ForeignKey("erasure_receipts.id", ondelete="CASCADE"))
    destination: Mapped[str] = mapped_column(String(32))  # `webhook` or `email`
    # The ids the CRM has of the account (from the offer events); no foreign key: the customer is gone.
    customer_id: Mapped[int] = mapped_column(BigInteger)
    tenant: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


# A row here, inserted and deleted by one SQLite transaction, lets it change audit rows (migration 0017).
audit_maintenance = Table("audit_maintenance", Base.metadata, Column("reason", String(64), nullable=False))
