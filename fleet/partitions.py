"""PostgreSQL's telemetry partitions (migration 0019): one a week by ts, made ahead and for old rows.

Rows whose week has no partition land in `telemetry_default`; `split_default` gives each such week its own
partition (a history import brings years-old rows), so that the default stays empty and attaching a
partition never has much to scan. The archive moves whole weeks and then drops their partition
(`drop_unchanged`); SQLite has one plain table and none of this applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from fleet import dialect
from fleet.settings import PARTITION_LOCK_TIMEOUT_S

WEEK = timedelta(days=7)
AHEAD_WEEKS = 4
DEFAULT = "telemetry_default"
MAKING_LOCK = 7_214_002  # advisory lock key (fleet.migrate holds 7_214_001)
_LOCK_NOT_AVAILABLE = "55P03"
_BOUNDS = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")
_NAME = re.compile(r"telemetry_(p\d{8}|default)")


@dataclass(frozen=True)
class Partition:
    """One week's partition: rows with lo <= ts < hi."""

    name: str
    lo: datetime
    hi: datetime


def week_of(ts: datetime) -> datetime:
    """The Monday 00:00 UTC starting the week of `ts`."""
    ts = ts.astimezone(UTC)
    return datetime(ts.year, ts.month, ts.day, tzinfo=UTC) - timedelta(days=ts.weekday())


def is_partition(name: str) -> bool:
    """Whether a table name is one of telemetry's partitions (the ORM models the parent only)."""
    return _NAME.fullmatch(name) is not None


def partitioned(conn: Connection) -> bool:
    """Whether telemetry is partitioned here (PostgreSQL after migration 0019)."""
    if conn.dialect.name != "postgresql":
        return False
    return conn.scalar(text("SELECT relkind = 'p' FROM pg_class WHERE oid = 'telemetry'::regclass")) is True


def listing(conn: Connection) -> list[Partition]:
    """The week partitions, oldest first (the default partition aside)."""
    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'telemetry'::regclass"
        )
    )
    found = []
    for name, bound in rows:
        match = _BOUNDS.search(bound)
        if match:
            lo, hi = (datetime.fromisoformat(b).astimezone(UTC) for b in match.groups())
            found.append(Partition(name, lo, hi))
    return sorted(found, key=lambda p: p.lo)


def _attach_week(conn: Connection, lo: datetime) -> None:
    """A partition for the week from `lo`, taking that week's rows out of the default partition."""
    name, hi = f"telemetry_p{lo:%Y%m%d}", lo + WEEK
    bounds = {"lo": lo, "hi": hi}
    # A plain table until attached: filling it fires no insert trigger (these rows are stored already).
    conn.execute(text(f"CREATE TABLE {name} (LIKE telemetry INCLUDING DEFAULTS)"))
    conn.execute(text(f"INSERT INTO {name} SELECT * FROM {DEFAULT} WHERE ts >= :lo AND ts < :hi"), bounds)
    conn.execute(text(f"DELETE FROM {DEFAULT} WHERE ts >= :lo AND ts < :hi"), bounds)
    conn.execute(
        text(
            f"ALTER TABLE telemetry ATTACH PARTITION {name} "
            f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
        )
    )


def wait_at_most(conn: Connection, seconds: float) -> None:
    """Longer than `seconds` waiting for a table (a long read or write holds it) and this transaction's next
    DDL gives up: the week stays where it is and the archive moves its rows by key. Waiting longer would also
    queue every later reader and writer of that table behind the waiting DDL."""
    conn.execute(text(f"SET LOCAL lock_timeout = '{round(seconds * 1000)}ms'"))


def ensure_in(
    conn: Connection,
    weeks: set[datetime],
    *,
    busy: list[str] | None = None,
    lock_timeout_s: float = PARTITION_LOCK_TIMEOUT_S,
) -> list[str]:
    """`ensure` inside the caller's transaction; a week busy past `lock_timeout_s` is skipped, into `busy`."""
    dialect.serialize(conn, MAKING_LOCK)  # two processes making one week: the second then finds it made
    wait_at_most(conn, lock_timeout_s)  # after the wait for the other maker
    made = []
    have = {p.lo for p in listing(conn)}
    for lo in sorted(weeks - have):
        name = f"telemetry_p{lo:%Y%m%d}"
        try:
            with conn.begin_nested():
                _attach_week(conn, lo)
        except OperationalError as exc:
            if not _lock_busy(exc):
                raise
            if busy is not None:
                busy.append(name)
            continue
        made.append(name)
    return made


def _lock_busy(exc: OperationalError) -> bool:
    """Whether the statement gave up waiting for a lock (`lock_timeout`)."""
    return getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE


def ensure(
    engine: Engine,
    weeks: set[datetime],
    *,
    busy: list[str] | None = None,
    lock_timeout_s: float = PARTITION_LOCK_TIMEOUT_S,
) -> list[str]:
    """Partitions for these weeks (Mondays 00:00 UTC) where none exists yet; returns the new names."""
    with engine.begin() as conn:
        return ensure_in(conn, weeks, busy=busy, lock_timeout_s=lock_timeout_s)


def split_default(
    engine: Engine, *, busy: list[str] | None = None, lock_timeout_s: float = PARTITION_LOCK_TIMEOUT_S
) -> list[str]:
    """A partition for every week with rows in the default partition; returns the new names. A week whose
    rows a transaction holds past `lock_timeout_s` stays in the default partition, named in `busy`."""
    with engine.connect() as conn:
        if not partitioned(conn):
            return []
        weeks = conn.execute(
            text(f"SELECT DISTINCT date_trunc('week', ts AT TIME ZONE 'UTC') FROM {DEFAULT}")
        ).scalars()
        found = {w.replace(tzinfo=UTC) for w in weeks}
    return ensure(engine, found, busy=busy, lock_timeout_s=lock_timeout_s) if found else []


def maintain(engine: Engine, *, now: datetime, lock_timeout_s: float = PARTITION_LOCK_TIMEOUT_S) -> list[str]:
    """Partitions ahead (this week and `AHEAD_WEEKS` more) and for the rows in the default partition."""
    with engine.connect() as conn:
        if not partitioned(conn):
            return []
    this_week = week_of(now)
    ahead = {this_week + i * WEEK for i in range(AHEAD_WEEKS + 1)}
    return split_default(engine, lock_timeout_s=lock_timeout_s) + ensure(
        engine, ahead, lock_timeout_s=lock_timeout_s
    )


def whole_before(engine: Engine, before: datetime) -> list[Partition]:
    """Partitions all of whose rows are older than `before` (none on SQLite)."""
    with engine.connect() as conn:
        if not partitioned(conn):
            return []
        return [p for p in listing(conn) if p.hi <= before]


def _changes(conn: Connection) -> int:
    return conn.scalar(text("SELECT last_value FROM telemetry_partition_changes"))


def watch(engine: Engine, part: Partition, *, lock_timeout_s: float = PARTITION_LOCK_TIMEOUT_S) -> int | None:
    """Count every later row change in `part` (a trigger); returns the count so far, for `drop_unchanged`.

    Creating the trigger waits for transactions writing to the partition: a read after it sees them all.
    None when one still writes after `lock_timeout_s`: the partition is not watched, nor can it be dropped.
    """
    with engine.begin() as conn:
        wait_at_most(conn, lock_timeout_s)
        try:
            with conn.begin_nested():
                conn.execute(
                    text(
                        f"CREATE OR REPLACE TRIGGER telemetry_moving AFTER INSERT OR UPDATE OR DELETE ON "
                        f"{part.name} FOR EACH ROW EXECUTE FUNCTION telemetry_note_change()"
                    )
                )
        except OperationalError as exc:
            if not _lock_busy(exc):
                raise
            return None
        # A value of our own: `last_value` reads the same before and after a new sequence's first nextval.
        return conn.scalar(text("SELECT nextval('telemetry_partition_changes')"))


def drop_unchanged(
    conn: Connection,
    part: Partition,
    *,
    mark: int,
    busy: list[str] | None = None,
    lock_timeout_s: float = PARTITION_LOCK_TIMEOUT_S,
) -> bool:
    """Detach and drop `part` in this transaction if no row of it changed since `watch` returned `mark`.

    False (nothing done) when a row changed or the table stayed busy past `lock_timeout_s` (then `part` is
    named in `busy`). The lock is taken on the parent first, as every writer takes it, so waiting here cannot
    deadlock with a writer.
    """
    wait_at_most(conn, lock_timeout_s)
    try:
        with conn.begin_nested():
            conn.execute(text("LOCK TABLE telemetry IN ACCESS EXCLUSIVE MODE"))
    except OperationalError as exc:
        if not _lock_busy(exc):
            raise
        if busy is not None:
            busy.append(part.name)
        return False
    if _changes(conn) != mark:
        return False
    conn.execute(text(f"ALTER TABLE telemetry DETACH PARTITION {part.name}"))
    conn.execute(text(f"DROP TABLE {part.name}"))
    return True
