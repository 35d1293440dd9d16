"""The telemetry store: idempotent batch writes, quarantine rows and reads for later stages."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Connection, Engine, event, func, select, update
from sqlalchemy.engine import Dialect

from fleet import contract, dialect, errors
from fleet.db import session
from fleet.tables import Customer, Machine, Quarantine, Telemetry

COLUMNS = ("customer_id", "machine_id", "seq", "ts", "readings", "fw", "extra", "received_at")
KEY = ("customer_id", "machine_id", "seq")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# An ingest writer's SQLite connection: each batch of 500 dirties ~1 leaf per machine in each telemetry index
# (~580 pages for 100 machines, more than the default 2 MiB cache holds), and the default checkpoint every
# 1,000 pages copied those same leaves back into the database file after almost every other batch.
WRITER_CACHE_KIB = 64 * 1024
WRITER_CHECKPOINT_PAGES = 10_000


def write_rows(conn: Connection, rows: list[tuple]) -> int:
    """The one telemetry upsert: store rows whose key is new; returns how many were new.

    Rows are driver-level tuples in `COLUMNS` order: JSON as text, timestamps as `dialect.ts_param` or
    `dialect.ts_texts` give them. Ingest and backfill both write through here.
    """
    # In key order: a batch holds a few rows of each of many machines, and inserted machine by machine they
    # fill each index leaf in turn (in-process, 100 machines: SQLite's insert and commit ~25 % less CPU).
    return dialect.insert_new(conn, table="telemetry", columns=COLUMNS, key=KEY, rows=rows, key_order=True)


def tune_writer(engine: Engine) -> Engine:
    """The engine, its SQLite connections set up for an ingest writer: a larger page cache, rarer checkpoints.

    For an engine of the writer's own, before its first connection; PostgreSQL engines stay as they are.
    """
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _writer_pragmas)
    return engine


def _writer_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
    dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")


def _ts_column(values: list[datetime], on: Dialect) -> list[str]:
    """Aware timestamps as the column's text input, the whole column at once (`dialect.ts_texts`)."""
    micros = np.fromiter(((v - _EPOCH) // _MICROSECOND for v in values), dtype=np.int64, count=len(values))
    return dialect.ts_texts(micros.astype("datetime64[us]"), on)


def insert_telemetry(
    conn: Connection, rows: Sequence[dict], *, dumps: Callable[[object], str] = json.dumps
) -> int:
    """Insert rows not stored yet (by `(customer_id, machine_id, seq)`); returns how many were new.

    `dumps` writes readings and extra as JSON text; the ingester passes a faster one for what its
    contract accepted.
    """
    if not rows:
        return 0
    # A column at a time: binding each timestamp through the column type cost more than its insert.
    ts = _ts_column([r["ts"] for r in rows], conn.dialect)
    received = _ts_column([r["received_at"] for r in rows], conn.dialect)
    params = [
        (
            r["customer_id"],
            r["machine_id"],
            r["seq"],
            t,
            dumps(r["readings"]),
            r.get("fw"),
            None if r.get("extra") is None else dumps(r["extra"]),
            at,
        )
        for r, t, at in zip(rows, ts, received, strict=True)
    ]
    return write_rows(conn, params)


_T = Telemetry.__table__.c
_STORED_ROWS = {
    name: select(_T.machine_id, _T.seq, _T.ts, _T.readings, _T.fw, _T.extra).where(keys)
    for name, keys in dialect.in_key_triples(_T.customer_id, _T.machine_id, _T.seq).items()
}


def stored_rows(conn: Connection, keys: Sequence[tuple[int, int, int]]) -> dict[tuple[int, int], dict]:
    """Stored ts, readings, fw and extra by (machine_id, seq), for (customer_id, machine_id, seq) keys."""
    found = conn.execute(_STORED_ROWS[conn.dialect.name], dialect.key_triples(conn, keys))
    return {(row.machine_id, row.seq): row._asdict() for row in found}


def insert_quarantine(conn: Connection, rows: Sequence[dict]) -> int:
    """Insert quarantine rows, once per distinct raw message (by digest); returns how many were new."""
    if not rows:
        return 0
    table = Quarantine.__table__
    stmt = dialect.insert(conn, table).on_conflict_do_nothing(index_elements=["digest"]).returning(table.c.id)
    return len(conn.execute(stmt, list(rows)).all())


def mark_replayed(conn: Connection, *, ids: Sequence[int], at: datetime) -> None:
    """Record that these quarantine rows were re-ingested."""
    if ids:
        conn.execute(update(Quarantine).where(Quarantine.id.in_(list(ids))).values(replayed_at=at))


def check_quarantine_reason(engine: Engine, reason: str | None) -> None:
    """Refuse (InvalidInput naming the known ones) a reason no quarantine row has or can be given."""
    if not reason or reason in contract.QUARANTINE_REASONS:
        return
    with engine.connect() as conn:  # a row an older version held under a code since retired
        if conn.scalar(select(Quarantine.id).where(Quarantine.reason == reason).limit(1)) is not None:
            return
    known = ", ".join(sorted(contract.QUARANTINE_REASONS))
    raise errors.InvalidInput(f"unknown quarantine reason {reason!r}: the reasons are {known}")


def pending_quarantine(
    engine: Engine, *, reason: str | None = None, include_replayed: bool = False, limit: int | None = None
) -> list[Quarantine]:
    """Quarantined messages, oldest first, optionally of one reason."""
    query = select(Quarantine).order_by(Quarantine.id)
    if reason:
        query = query.where(Quarantine.reason == reason)
    if not include_replayed:
        query = query.where(Quarantine.replayed_at.is_(None))
    if limit:
        query = query.limit(limit)
    with session(engine) as sess:
        return list(sess.scalars(query))


def quarantine_pages(
    engine: Engine, *, reason: str | None = None, page_size: int = 500
) -> Iterator[list[Quarantine]]:
    """Quarantined messages not replayed yet, oldest first, a page at a time (keyset, not offset)."""
    after = 0
    while True:
        query = select(Quarantine).where(Quarantine.replayed_at.is_(None), Quarantine.id > after)
        if reason:
            query = query.where(Quarantine.reason == reason)
        with session(engine) as sess:
            page = list(sess.scalars(query.order_by(Quarantine.id).limit(page_size)))
            sess.expunge_all()
        if not page:
            return
        yield page
        after = page[-1].id


def count_stored(engine: Engine, *, machine_ids: Sequence[int], seqs: tuple[int, int]) -> int:
    """Rows stored for these machines with seq in the inclusive range `seqs`."""
    query = select(func.count()).where(
        Telemetry.machine_id.in_(list(machine_ids)), Telemetry.seq.between(*seqs)
    )
    with engine.connect() as conn:
        return conn.scalar(query) or 0


def count_telemetry(engine: Engine) -> int:
    """Rows in the telemetry table."""
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Telemetry)) or 0


def summary(engine: Engine) -> list[dict]:
    """Per machine: tenant, machine, messages stored, first and last seq and timestamp."""
    query = (
        select(
            Customer.tenant,
            Machine.code,
            func.count(),
            func.min(Telemetry.seq),
            func.max(Telemetry.seq),
            func.max(Telemetry.ts),
        )
        .join(Machine, Telemetry.machine_id == Machine.id)
        .join(Customer, Telemetry.customer_id == Customer.id)
        .group_by(Customer.tenant, Machine.code)
        .order_by(Customer.tenant, Machine.code)
    )
    with engine.connect() as conn:
        return [
            {"tenant": t, "machine": m, "rows": n, "first_seq": lo, "last_seq": hi, "last_ts": ts}
            for t, m, n, lo, hi, ts in conn.execute(query)
        ]
