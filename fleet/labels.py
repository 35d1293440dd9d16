"""The label store: write labelled events idempotently on their natural key, and read them back as frames."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select, tuple_

from fleet import dialect, errors, machine_types
from fleet.tables import Alert, Customer, Label, Machine, named_mode, utcnow
from fleet.tables.labels import LABEL_KINDS, LABEL_SOURCES

if TYPE_CHECKING:
    import pandas as pd

KEY = ("machine_id", "ts", "kind", "component")
COLUMNS = [
    "label_id",
    "tenant",
    "machine",
    "machine_id",
    "machine_type",
    "ts",
    "kind",
    "component",
    "mode",
    "source",
    "ref",
    "activity",
    "precursor",
    "onset",
    "end",
]
_CHUNK = 2000  # rows per statement, below SQLite's bound-parameter limit


def check(row: Mapping[str, object]) -> None:
    """Refuse (InvalidInput) a label row whose kind or source is not one of the store's."""
    if row["kind"] not in LABEL_KINDS:
        raise errors.InvalidInput(f"label kind must be one of {', '.join(LABEL_KINDS)}, not {row['kind']!r}")
    if row["source"] not in LABEL_SOURCES:
        raise errors.InvalidInput(f"label source must be one of {', '.join(LABEL_SOURCES)}")


def _row(row: Mapping[str, object], now: datetime) -> dict:
    check(row)
    return {
        "customer_id": row["customer_id"],
        "machine_id": row["machine_id"],
        "ts": row["ts"],
        "kind": row["kind"],
        "component": row.get("component") or "",
        "mode": row.get("mode"),
        "source": row["source"],
        "ref": row["ref"],
        "activity": row.get("activity"),
        "precursor": row.get("precursor"),
        "onset": row.get("onset"),
        "end": row.get("end"),
        "created_at": now,
    }


def write(conn: Connection, rows: Iterable[Mapping[str, object]]) -> int:
    """Store the labels whose natural key (machine, ts, kind, component) is new; returns how many were new."""
    now = utcnow()
    records = [_row(r, now) for r in rows]
    table = Label.__table__
    added = 0
    for i in range(0, len(records), _CHUNK):
        stmt = dialect.insert(conn, table).on_conflict_do_nothing(index_elements=list(KEY))
        added += len(conn.execute(stmt.returning(table.c.id), records[i : i + _CHUNK]).all())
    return added


def stored_keys(conn: Connection, keys: Collection[tuple[int, datetime, str, str]]) -> set[tuple]:
    """The natural keys among `keys` that are stored already (for a dry run's count of what is new)."""
    keys = sorted(set(keys))
    found: set[tuple] = set()
    cols = tuple_(Label.machine_id, Label.ts, Label.kind, Label.component)
    for i in range(0, len(keys), _CHUNK // 4):
        query = select(Label.machine_id, Label.ts, Label.kind, Label.component).where(
            cols.in_(keys[i : i + _CHUNK // 4])
        )
        found.update(tuple(r) for r in conn.execute(query))
    return found


def read(
    conn: Connection,
    *,
    machine_ids: Collection[int] | None = None,
    kinds: Collection[str] | None = None,
    ref: str | None = None,
) -> pd.DataFrame:
    """Labels (columns `COLUMNS`, by time then machine), optionally of some machines, kinds or one ref."""
    import pandas as pd  # here, not at the top: the history and machines imports write labels without it

    query = (
        select(
            Label.id,
            Customer.tenant,
            Machine.code,
            Label.machine_id,
            Machine.machine_type,
            Label.ts,
            Label.kind,
            Label.component,
            Label.mode,
            Label.source,
            Label.ref,
            Label.activity,
            Label.precursor,
            Label.onset,
            Label.end,
        )
        .join(Customer, Label.customer_id == Customer.id)
        .join(Machine, Label.machine_id == Machine.id)
        .order_by(Label.ts, Machine.code, Label.kind, Label.component)
    )
    if machine_ids is not None:
        query = query.where(Label.machine_id.in_(list(machine_ids)))
    if kinds is not None:
        query = query.where(Label.kind.in_(list(kinds)))
    if ref is not None:
        query = query.where(Label.ref == ref)
    frame = pd.DataFrame(conn.execute(query).all(), columns=COLUMNS)
    for col in ("ts", "onset", "end"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def any_with_ref(conn: Connection, ref: str) -> bool:
    """Whether some label came from `ref` (a run, a file line, an alert)."""
    return conn.scalar(select(Label.id).where(Label.ref == ref).limit(1)) is not None


# A technician's finding on a resolved alert, as the label kind it becomes. 'other' is a visit that says
# neither fault nor no fault: it may have repaired the machine unrecorded, so training knows nothing past it.
FINDING_KINDS = {
    "confirmed_fault": "failure",
    "replaced_before_failure": "replacement",
    "no_fault_found": "no_fault",
    "other": "visit",
}
# Findings that prove an alert right (the ledger's alert precision counts them).
RIGHT_ALERT_FINDINGS = tuple(f for f, kind in FINDING_KINDS.items() if kind in ("failure", "replacement"))


def record_finding(
    conn: Connection,
    *,
    alert: Alert,
    finding: str,
    at: datetime,
    component: str | None = None,
    mode: str | None = None,
) -> bool:
    """Store a resolved alert's finding as a label (source `finding`, ref `alert:ID`); False if it makes none.

    The failure mode defaults to the alert's; the component to the one the machine's type says that mode
    belongs to, else none (a type no file defines, a mode it does not declare, a no-fault finding, a visit).
    """
    kind = FINDING_KINDS.get(finding)
    if kind is None:
        return False
    mode = mode or named_mode(alert.failure_mode)
    if not component and kind in ("failure", "replacement"):
        declared = machine_types.declared_for(conn, [alert.machine_id])[alert.machine_id][1]
        component = declared and declared.component_of(mode)
    row = {
        "customer_id": alert.customer_id,
        "machine_id": alert.machine_id,
        "ts": at,
        "kind": kind,
        "component": component or "",
        "mode": mode,
        "source": "finding",
        "ref": f"alert:{alert.id}",
    }
    return write(conn, [row]) == 1
