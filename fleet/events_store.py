"""The machine events store: idempotent batch writes of alarm and error codes, and reads for features."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Connection, func, select

from fleet import dialect, machine_types
from fleet.tables import MachineEvent

COLUMNS = ("customer_id", "machine_id", "seq", "ts", "code", "severity", "text", "extra", "received_at")
KEY = ("customer_id", "machine_id", "seq")


def insert_events(
    conn: Connection, rows: Sequence[dict], *, dumps: Callable[[object], str] = json.dumps
) -> int:
    """Insert event rows not stored yet (by `(customer_id, machine_id, seq)`); returns how many were new."""
    if not rows:
        return 0
    bind = dialect.ts_binder(conn.dialect)
    params = [
        (
            r["customer_id"],
            r["machine_id"],
            r["seq"],
            bind(r["ts"]),
            r["code"],
            r.get("severity"),
            r.get("text"),
            None if r.get("extra") is None else dumps(r["extra"]),
            bind(r["received_at"]),
        )
        for r in rows
    ]
    return dialect.insert_new(conn, table="machine_events", columns=COLUMNS, key=KEY, rows=params)


_E = MachineEvent.__table__.c
_STORED_EVENTS = {
    name: select(_E.machine_id, _E.seq, _E.ts, _E.code, _E.severity, _E.text, _E.extra).where(keys)
    for name, keys in dialect.in_key_triples(_E.customer_id, _E.machine_id, _E.seq).items()
}


def stored_events(conn: Connection, keys: Sequence[tuple[int, int, int]]) -> dict[tuple[int, int], dict]:
    """Stored ts, code, severity, text and extra by (machine_id, seq), for (customer_id, machine_id, seq)."""
    found = conn.execute(_STORED_EVENTS[conn.dialect.name], dialect.key_triples(conn, keys))
    return {(row.machine_id, row.seq): row._asdict() for row in found}


def undeclared_codes(conn: Connection, codes: dict[int, set[str]]) -> dict[int, set[str]]:
    """Of each machine's codes, those its type declares codes yet not this one (any version of the type)."""
    out = {}
    for machine_id, (_, found) in machine_types.declared_for(conn, list(codes)).items():
        known = set(found.codes) if found else set()
        if known and codes[machine_id] - known:
            out[machine_id] = codes[machine_id] - known
    return out


def code_counts(
    conn: Connection, *, machine_ids: Sequence[int], start: datetime, end: datetime
) -> dict[tuple[int, str], int]:
    """Events per (machine_id, code) with start <= ts < end."""
    e = MachineEvent
    query = (
        select(e.machine_id, e.code, func.count())
        .where(e.machine_id.in_(list(machine_ids)), e.ts >= start, e.ts < end)
        .group_by(e.machine_id, e.code)
    )
    return {(m, code): n for m, code, n in conn.execute(query)}


def last_seen(
    conn: Connection, *, machine_ids: Sequence[int], before: datetime
) -> dict[tuple[int, str], datetime]:
    """The newest ts per (machine_id, code) before `before`."""
    e = MachineEvent
    query = (
        select(e.machine_id, e.code, func.max(e.ts))
        .where(e.machine_id.in_(list(machine_ids)), e.ts < before)
        .group_by(e.machine_id, e.code)
    )
    return {(m, code): ts for m, code, ts in conn.execute(query)}
