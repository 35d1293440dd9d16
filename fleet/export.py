"""A customer's data as one ZIP (EU Data Act access): Parquet and CSV per table, a JSON manifest.

Streamed a piece at a time: telemetry (hot and archived as one) goes one machine and one month per
file, so memory is bounded by the largest machine-month, not by the customer. The manifest lists every
file with its rows and SHA-256, and a checksum of the telemetry values (their sum and count per sensor).
Only rows whose customer id is the customer's are read: no other tenant's row can appear.
Both files of a piece come from one Arrow table; the CSV text is pandas' (`fleet.export_csv`) but written
by Arrow. Parquet goes into the ZIP stored (it is compressed already), text deflated at the fastest level.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, func, select

from fleet import archive, export_csv, history
from fleet.tables import (
    Alert,
    ArchivedRange,
    ArchiveFile,
    Customer,
    DataUseGrant,
    Label,
    Machine,
    MachineEvent,
    Telemetry,
)

_TABLES = {
    "machines": Machine,
    "events": MachineEvent,
    "alerts": Alert,
    "service_history": Label,
    "consent": DataUseGrant,
}


class _Sink:
    """A write-only stream for ZipFile whose bytes are taken out as they come (no seek: a stream ZIP)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.position = 0

    def write(self, data: bytes) -> int:
        self.buffer += data
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = bytes(self.buffer)
        self.buffer.clear()
        return out


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    """JSON columns as JSON text, so that Parquet and CSV hold them alike."""
    out = frame.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, dict | list)).any():
            out[column] = out[column].map(lambda v: None if v is None else json.dumps(v, sort_keys=True))
    return out


def _telemetry_flat(rows: pd.DataFrame) -> pd.DataFrame:
    """Telemetry rows with one column per sensor (`readings.<name>`) next to the message columns."""
    wide = pd.DataFrame.from_records(rows["readings"].tolist(), index=rows.index).add_prefix("readings.")
    base = rows.drop(columns=["readings"])
    base["extra"] = base["extra"].map(lambda v: None if v is None else json.dumps(v, sort_keys=True))
    return pd.concat([base, wide], axis=1)


def _entries(engine: Engine, customer_id: int, archive_url: str) -> Iterator[tuple[str, pd.DataFrame]]:
    with engine.connect() as conn:
        for name, table in _TABLES.items():
            query = select(table).where(table.customer_id == customer_id)
            # The columns named even when no row comes: an empty table's files still say what it holds.
            frame = pd.DataFrame(conn.execute(query).all(), columns=list(table.__table__.columns.keys()))
            yield name, _flat(frame)
        machines = list(
            conn.scalars(select(Machine.id).where(Machine.customer_id == customer_id).order_by(Machine.id))
        )
    for machine_id in machines:
        with engine.connect() as conn:
            months = _months(conn, machine_id, customer_id)
        for start, end in months:
            with engine.connect() as conn:
                rows = history.read_rows(
                    conn, machine_ids=[machine_id], start=start, end=end, archive_url=archive_url
                )
            rows = rows[rows["customer_id"] == customer_id]
            if len(rows):
                yield f"telemetry/machine={machine_id}/{start:%Y-%m}", _telemetry_flat(rows)


def _months(conn, machine_id: int, customer_id: int) -> list[tuple[datetime, datetime]]:  # noqa: ANN001
    """Month spans holding the machine's rows, hot or archived: only those, however far apart they are (a
    clock reset to 2000 once made an export read every month since). The hot rows are looked at first: rows
    an archive run moves meanwhile are then found in its files."""
    months = set()
    hot = select(func.min(Telemetry.ts)).where(Telemetry.machine_id == machine_id)
    first = conn.scalar(hot)
    while first is not None:  # one read of the (machine, ts) index a month with hot rows
        month = datetime(first.year, first.month, 1, tzinfo=UTC)
        months.add(month)
        first = conn.scalar(hot.where(Telemetry.ts >= _following(month)))
    in_file = ArchiveFile.id.in_(select(ArchivedRange.file_id).where(ArchivedRange.machine_id == machine_id))
    archived = conn.scalars(select(ArchiveFile.month).where(ArchiveFile.customer_id == customer_id, in_file))
    months.update(datetime.strptime(m, "%Y-%m").replace(tzinfo=UTC) for m in archived)
    return [(month, _following(month)) for month in sorted(months)]


def _following(month: datetime) -> datetime:
    return datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)


def checksum(frame: pd.DataFrame) -> dict[str, list[float]]:
    """Per sensor column of flat telemetry: [sum, count] of its values."""
    return {
        c.removeprefix("readings."): [float(frame[c].sum()), int(frame[c].count())]
        for c in frame.columns
        if c.startswith("readings.")
    }


def _files(frame: pd.DataFrame) -> tuple[bytes, bytes]:
    """The piece as Parquet (what `to_parquet` writes) and CSV, both from one Arrow table.

    The Parquet keeps every value as stored; in the CSV, for people's spreadsheets, text that a machine
    or a person wrote and that would run as a formula (`=HYPERLINK(…)`) starts with a `'` (OWASP).
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    parquet = io.BytesIO()
    pq.write_table(table, parquet, compression="snappy")
    shown = export_csv.as_text(table)
    return parquet.getvalue(), export_csv.write(shown)


def _add(archive_zip: zipfile.ZipFile, name: str, data: bytes) -> None:
    """Parquet is stored as it is (deflate gains ~nothing on it); text deflated at the fastest level."""
    if name.endswith(".parquet"):
        archive_zip.writestr(name, data, compress_type=zipfile.ZIP_STORED)
    else:
        archive_zip.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)


def stream(engine: Engine, *, tenant: str, archive_url: str) -> Iterator[bytes]:
    """The customer's export as ZIP bytes, a piece at a time."""
    with engine.connect() as conn:
        customer_id = conn.scalar(select(Customer.id).where(Customer.tenant == tenant))
    if customer_id is None:
        raise LookupError(f"no customer {tenant!r}")
    with engine.connect() as conn:  # a file found unreadable halfway would cut the ZIP off unexplained
        archive.check_readable(conn, customer_id=customer_id, url=archive_url)
    sink = _Sink()
    manifest: dict = {
        "tenant": tenant,
        "generated_at": datetime.now(UTC).isoformat(),
        "files": [],
        "telemetry": {},
    }
    sums: dict[str, list[float]] = {}
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive_zip:
        for name, frame in _entries(engine, customer_id, archive_url):
            if name.startswith("telemetry/"):
                for sensor, (total, count) in checksum(frame).items():
                    acc = sums.setdefault(sensor, [0.0, 0])
                    acc[0] += total
                    acc[1] += count
            parquet, csv = _files(frame)
            for suffix, data in ((".parquet", parquet), (".csv", csv)):
                _add(archive_zip, name + suffix, data)
                manifest["files"].append(
                    {"name": name + suffix, "rows": len(frame), "sha256": hashlib.sha256(data).hexdigest()}
                )
            yield sink.take()
        with engine.connect() as conn:  # pieces read after its erasure came out empty: the ZIP would be short
            if conn.scalar(select(Customer.id).where(Customer.id == customer_id)) is None:
                raise LookupError(f"customer {tenant!r} was erased while its export was being written")
        rows = sum(f["rows"] for f in manifest["files"] if f["name"].startswith("telemetry/")) // 2
        manifest["telemetry"] = {"rows": rows, "checksum": sums}  # each part is there as Parquet and CSV
        _add(archive_zip, "manifest.json", json.dumps(manifest, indent=2).encode())
    yield sink.take()
