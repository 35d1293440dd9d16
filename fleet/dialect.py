"""The SQLite and PostgreSQL differences in one place: timestamps, epoch and JSON SQL, upserts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Connection, Select, Table, Text, cast, func, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

from fleet.tables import UtcDateTime

if TYPE_CHECKING:  # numpy is imported where it is used: registering machines or labels needs none of it
    import numpy as np

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_TS = UtcDateTime()
# Keys as one array parameter, not three bind parameters each: a batch's IN list of 15,000 parameters took
# PostgreSQL 1.2 s a batch of 5,000 stored rows (55-77 ms this way), and over 65,535 it cannot be sent at all.
_KEY_TRIPLES = {
    "postgresql": text(
        "SELECT * FROM unnest(CAST(:customers AS BIGINT[]), CAST(:machines AS BIGINT[]), "
        "CAST(:seqs AS BIGINT[]))"
    ),
    "sqlite": text(
        "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') "
        "FROM json_each(:keys)"
    ),
}


def insert(conn: Connection, table: Table) -> Insert:
    """The backend's INSERT, which knows ON CONFLICT (upserts)."""
    return _INSERTS[conn.dialect.name](table)


def in_key_triples(*columns: ColumnElement) -> dict[str, ColumnElement]:
    """Per backend, `columns` (customer, machine, seq) IN the keys that `key_triples` binds."""
    return {name: tuple_(*columns).in_(keys.columns(*columns)) for name, keys in _KEY_TRIPLES.items()}


def key_triples(conn: Connection, keys: Sequence[tuple[int, int, int]]) -> dict:
    """The bind parameters of `in_key_triples` for these (customer_id, machine_id, seq) keys."""
    if conn.dialect.name == "postgresql":
        return {name: [key[i] for key in keys] for i, name in enumerate(("customers", "machines", "seqs"))}
    return {"keys": json.dumps([list(key) for key in keys])}


def skip_locked(query: Select, dialect: Dialect) -> Select:
    """The query, locking its rows and skipping those another transaction holds (PostgreSQL).

    SQLite has no row locks: a writer holds the whole database, so the query stays as it is.
    """
    return query.with_for_update(skip_locked=True) if dialect.name == "postgresql" else query


def serialize(conn: Connection, key: int) -> None:
    """Hold `key` until this transaction ends: transactions taking the same key run their writes in turn.

    PostgreSQL: a transaction-level advisory lock. SQLite: nothing to do, one writer holds the database.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def ts_binder(dialect: Dialect) -> Callable[[datetime], object]:
    """UtcDateTime's own bind conversion (SQLite: naive UTC text), for statements below SQLAlchemy's types."""
    return _TS.dialect_impl(dialect).bind_processor(dialect)


def ts_param(ts: datetime, dialect: Dialect) -> object:
    """One aware timestamp as the column type binds it."""
    return ts_binder(dialect)(ts)


def ts_texts(values: np.ndarray, dialect: Dialect) -> list[str]:
    """UTC datetime64 values as text input for the column: what `ts_binder` stores, vectorised."""
    import numpy as np

    text = np.datetime_as_string(np.asarray(values, dtype="datetime64[us]"), unit="us").tolist()
    suffix = "" if dialect.name == "sqlite" else "+00"
    return [s.replace("T", " ") + suffix for s in text]


def ms_of_texts(joined: str, count: int) -> np.ndarray:
    """`count` SQLite timestamps (`ts_binder`'s text) joined by commas, as epoch milliseconds (rounded).

    Parsed by numpy in one call: fixed-width texts are cut from one buffer, without a string per row.
    """
    import numpy as np

    width = len("2026-01-01 00:00:00.000000")
    if len(joined) == (width + 1) * count - 1:
        cells = np.frombuffer((joined + ",").encode(), dtype=np.uint8).reshape(count, width + 1)
        texts = np.ascontiguousarray(cells[:, :width]).view(f"S{width}").ravel()
    else:
        texts = np.array(joined.split(",") if count else [], dtype=str)
    us = texts.astype("datetime64[us]").view(np.int64)
    return (us + 500) // 1000  # round(), as `epoch_ms` does in SQL


def epoch_ms(column: str, dialect: Dialect) -> str:
    """SQL: a stored timestamp as whole milliseconds since 1970 (integer)."""
    if dialect.name == "sqlite":
        return f"CAST(round((julianday({column}) - 2440587.5) * 86400000.0) AS INTEGER)"
    return f"round(extract(epoch from {column}) * 1000)::bigint"


def epoch_us(column: str, dialect: Dialect) -> str:
    """SQL: a stored timestamp as microseconds since 1970 (PostgreSQL; SQLite's text is parsed faster)."""
    if dialect.name == "sqlite":
        return column
    return f"(extract(epoch from {column}) * 1000000)::bigint"


def ms_bucket(column: str, *, start: str, width_ms: str, dialect: Dialect) -> str:
    """SQL: whole milliseconds from the bound `start` to `column`, divided as integers by `width_ms`.

    Integer milliseconds, not float days: a row on a bucket boundary must land in the later bucket.
    """
    if dialect.name == "sqlite":
        return f"CAST(round((julianday({column}) - julianday({start})) * 86400000.0) AS INTEGER) / {width_ms}"
    return (
        f"CAST(floor(extract(epoch FROM ({column} - CAST({start} AS timestamptz))) * 1000 / {width_ms}) "
        "AS INTEGER)"
    )


def json_key(name: str, dialect: Dialect) -> str:
    """A JSON object key as a path value to bind (a quoted path on SQLite), so that any name is safe."""
    if dialect.name == "sqlite":
        return '$."' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return name


def literal(value: str) -> str:
    """A string as an SQL literal."""
    return "'" + value.replace("'", "''") + "'"


def json_number(column: str, key: str, *, dialect: Dialect) -> str:
    """SQL: the number under `key` (a bound parameter or a `literal` of `json_key`) of a JSON column."""
    if dialect.name == "sqlite":
        return f"json_extract({column}, {key})"
    return f"({column} ->> {key})::float8"


def json_text(column: str, key: str, *, dialect: Dialect) -> str:
    """SQL: the text under `key` (as for `json_number`) of a JSON column."""
    if dialect.name == "sqlite":
        return f"json_extract({column}, {key})"
    return f"({column} ->> {key})"


def as_int(condition: str, dialect: Dialect) -> str:
    """SQL: a condition as 1 or 0."""
    return condition if dialect.name == "sqlite" else f"({condition})::int"


def iso_text(column: str, dialect: Dialect) -> str:
    """SQL: a stored timestamp as pydantic writes it (…T08:00:00Z, or …T08:00:00.120000Z)."""
    if dialect.name == "sqlite":  # UtcDateTime's text: '2026-11-23 08:00:00.120000'
        c = column
        return (
            f"CASE WHEN substr({c}, 21) IN ('', '000000')"
            f" THEN substr({c}, 1, 10) || 'T' || substr({c}, 12, 8) || 'Z'"
            f" ELSE substr({c}, 1, 10) || 'T' || substr({c}, 12) || 'Z' END"
        )
    return (
        f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        f" || CASE WHEN to_char({column}, 'US') = '000000' THEN '' ELSE to_char({column}, '.US') END || 'Z'"
    )


def json_value(column: str, dialect: Dialect) -> str:
    """SQL: a JSON column as a JSON value inside a built object, not as a string holding JSON."""
    return f"json({column})" if dialect.name == "sqlite" else column


def json_as_text(column: str, dialect: Dialect) -> str:
    """SQL: a JSON column as its text, for orjson (psycopg would decode JSONB with the slower stdlib json)."""
    return column if dialect.name == "sqlite" else f"{column}::text"


def json_object(dialect: Dialect, *pairs):  # noqa: ANN002, ANN201
    """SQL: a JSON object of key/value pairs, as text."""
    if dialect.name == "sqlite":
        return func.json_object(*pairs)
    return cast(func.json_build_object(*pairs), Text)  # as text: psycopg would parse json into a dict


# Tables that PostgreSQL partitions by time (migration 0019), with the key column that writers lock by. A
# unique index there must hold the partition column, so none enforces the key: `insert_new` does.
_PARTITIONED = {"telemetry": "machine_id"}
_KEY_LOCKS = 7214  # pg_advisory_xact_lock(_KEY_LOCKS, key value): the lock space of those key columns


def on_conflict_skip(table: str, key: Sequence[str], dialect: Dialect) -> str:
    """SQL: the clause that skips a row whose `key` is stored (any unique index, where none is the key's)."""
    if dialect.name == "postgresql" and table in _PARTITIONED:
        return "ON CONFLICT DO NOTHING"
    return f"ON CONFLICT ({', '.join(key)}) DO NOTHING"


def _insert_partitioned(conn: Connection, *, table: str, stage: str, names: str, key: Sequence[str]) -> int:
    """Insert the staged rows whose key no partition holds: the key's uniqueness, which no index can keep.

    First a lock per value of the lock column (machine), in order, held to commit: a concurrent writer of
    the same machine waits, and the INSERT's snapshot, taken after the locks, sees what it committed. Then
    one INSERT … SELECT of the first staged row per key that is stored nowhere yet, set-based: a per-row
    lookup (a trigger) opened every partition's index for each row and halved the write rate.
    """
    lock_by = _PARTITIONED[table]
    conn.exec_driver_sql(
        f"SELECT pg_advisory_xact_lock({_KEY_LOCKS}, v) FROM (SELECT DISTINCT {lock_by} AS v FROM {stage}) s "
        "ORDER BY v"
    )
    keys = ", ".join(key)
    same = " AND ".join(f"t.{k} = s.{k}" for k in key)
    return conn.exec_driver_sql(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM ("
        f"SELECT DISTINCT ON ({keys}) * FROM {stage} s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {same}) ORDER BY {keys}, s.ctid) n "
        "ON CONFLICT DO NOTHING"
    ).rowcount


# Rows and parameters per SQLite INSERT: far below SQLITE_MAX_VARIABLE_NUMBER (32766 since SQLite 3.32).
_SQLITE_ROWS, _SQLITE_PARAMS = 512, 8192


def _insert_sqlite(conn: Connection, head: str, conflict: str, width: int, rows: list) -> int:
    """Multi-row INSERTs of 2^k rows each, so that the driver's statement cache holds a few shapes only.

    Not executemany: it releases the GIL around every row's step, and each release hands the GIL to the
    MQTT thread and waits to get it back; one statement per 512 rows releases it once.
    """
    chunk = max(1, min(_SQLITE_ROWS, _SQLITE_PARAMS // width))
    marks = "(" + ", ".join(["?"] * width) + ")"
    stored, at = 0, 0
    while at < len(rows):
        n = min(chunk, 1 << ((len(rows) - at).bit_length() - 1))
        values = ", ".join([marks] * n)
        params = [v for row in rows[at : at + n] for v in row]
        stored += conn.exec_driver_sql(f"{head} {values} {conflict}", tuple(params)).rowcount
        at += n
    return stored


def insert_new(
    conn: Connection,
    *,
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    rows: list,
    key_order: bool = False,
) -> int:
    """Insert driver-level rows (tuples in `columns` order) whose `key` is not stored yet; returns how many.

    Below SQLAlchemy's per-value type processing, which would cost more than the insert. SQLite takes
    multi-row INSERTs; PostgreSQL a COPY into a session-local stage table, then one INSERT … SELECT that skips
    what is stored (COPY itself cannot skip conflicts). Timestamps come as `ts_param` or `ts_texts` give
    them. Errors are raised as SQLAlchemy's (IntegrityError, DataError …), as from any other statement.
    `key_order`: SQLite inserts the rows sorted by key instead of as given (a table whose ids need not follow
    the rows' order); PostgreSQL's INSERT … SELECT takes them in key order anyway.
    """
    if not rows:
        return 0
    names = ", ".join(columns)
    conflict = on_conflict_skip(table, key, conn.dialect)
    if conn.dialect.name == "sqlite":
        if key_order:  # stable: of two rows with one key the first still wins
            rows = sorted(rows, key=itemgetter(*(columns.index(k) for k in key)))
        return _insert_sqlite(conn, f"INSERT INTO {table} ({names}) VALUES", conflict, len(columns), rows)
    stage = f"{table}_stage"
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    copy_sql = f"COPY {stage} ({names}) FROM STDIN"
    dbapi = conn.dialect.loaded_dbapi
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        with cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
    except dbapi.Error as exc:
        raise DBAPIError.instance(copy_sql, None, exc, dbapi.Error) from None
    finally:
        cursor.close()
    if table in _PARTITIONED:
        return _insert_partitioned(conn, table=table, stage=stage, names=names, key=key)
    return conn.exec_driver_sql(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} {conflict}"
    ).rowcount
