"""Backfill: months of simulated history written straight into the telemetry store, fast and idempotently."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, and_, func, select

from fleet.tables import Telemetry
from simulators import ground_truth
from simulators.engine import SimulationRun
from simulators.machine_types import MACHINE_TYPES, SENSOR_COLUMNS
from simulators.registration import register_machines

COLUMNS = "customer_id, machine_id, seq, ts, readings, fw, extra, received_at"
SQLITE_INSERT = (
    f"INSERT INTO telemetry ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (customer_id, machine_id, seq) DO NOTHING"
)
PG_STAGE = "telemetry_backfill_stage"
JSON_NULL = "null"  # what SQLAlchemy's JSON type writes for None, so backfilled rows match ingested ones
Progress = Callable[[int], None]


@dataclass
class BackfillReport:
    """What a backfill did: rows generated and newly stored, sensor values in them, and the time taken."""

    machines: int
    rows: int
    stored: int
    readings: int
    failures: int
    run_id: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        """Rows generated and written (or found present) per second."""
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def readings_per_s(self) -> float:
        """Sensor values per second."""
        return self.readings / self.seconds if self.seconds else 0.0


@dataclass
class Chunk:
    """One panel chunk turned into telemetry rows, sorted by the primary key."""

    size: int
    rows: list[tuple]
    readings: int
    complete: bool  # every row of the chunk is stored already


def backfill(
    run: SimulationRun,
    engine: Engine,
    *,
    progress: Progress | None = None,
    chunk_machines: int = 250,
    chunk_steps: int = 1440,
) -> BackfillReport:
    """Register the fleet, store its ground truth and every telemetry row; re-running stores nothing new."""
    started = time.perf_counter()
    ids = register_machines(engine, run.machines)
    run_id = ground_truth.write_run(engine, run, ids)
    keys = list(zip(run.machines["tenant"], run.machines["machine"], strict=True))
    customer_ids = np.array([ids[k][0] for k in keys], dtype=np.int64)
    machine_ids = np.array([ids[k][1] for k in keys], dtype=np.int64)
    write = _pg_write if engine.dialect.name == "postgresql" else _sqlite_write
    rows = stored = readings = 0
    chunks = _chunks(run, engine, customer_ids, machine_ids, chunk_machines, chunk_steps)
    for chunk in _prefetch(chunks):
        if not chunk.complete:
            with engine.begin() as conn:
                stored += write(conn, chunk.rows)
        rows += chunk.size
        readings += chunk.readings
        if progress:
            progress(chunk.size)
    return BackfillReport(
        machines=len(run.machines),
        rows=rows,
        stored=stored,
        readings=readings,
        failures=len(run.failures),
        run_id=run_id,
        seconds=time.perf_counter() - started,
    )


def _chunks(
    run: SimulationRun,
    engine: Engine,
    customer_ids: np.ndarray,
    machine_ids: np.ndarray,
    chunk_machines: int,
    chunk_steps: int,
) -> Iterator[Chunk]:
    sqlite = engine.dialect.name == "sqlite"
    for panel in run.iter_panels(chunk_machines=chunk_machines, chunk_steps=chunk_steps):
        codes = panel["machine"].cat.codes.to_numpy()
        if _stored_rows(engine, machine_ids[np.unique(codes)], panel["seq"]) == len(panel):
            yield Chunk(len(panel), [], _count_readings(panel), True)
            continue
        yield panel_rows(panel, customer_ids, machine_ids, sqlite=sqlite)


def _stored_rows(engine: Engine, machine_ids: np.ndarray, seq: pd.Series) -> int:
    """Rows already stored for these machines in the chunk's seq range."""
    query = select(func.count()).where(
        and_(
            Telemetry.machine_id.in_(machine_ids.tolist()),
            Telemetry.seq.between(int(seq.min()), int(seq.max())),
        )
    )
    with engine.connect() as conn:
        return conn.scalar(query) or 0


def _count_readings(panel: pd.DataFrame) -> int:
    return int(np.isfinite(panel[list(SENSOR_COLUMNS)].to_numpy()).sum())


def panel_rows(
    panel: pd.DataFrame, customer_ids: np.ndarray, machine_ids: np.ndarray, *, sqlite: bool
) -> Chunk:
    """Telemetry rows for a panel chunk: readings JSON of the non-NaN values, `state` in extra when down."""
    n = len(panel)
    codes = panel["machine"].cat.codes.to_numpy()
    values = panel[list(SENSOR_COLUMNS)].to_numpy()
    readings = np.empty(n, dtype=object)
    type_codes = panel["machine_type"].cat.codes.to_numpy()
    type_names = list(panel["machine_type"].cat.categories)
    counted = 0
    for code in np.unique(type_codes):
        names = MACHINE_TYPES[type_names[code]].sensor_names
        idx = np.flatnonzero(type_codes == code)
        sub = values[np.ix_(idx, [SENSOR_COLUMNS.index(s) for s in names])]
        finite = np.isfinite(sub)
        counted += int(finite.sum())
        full = finite.all(axis=1)
        readings[idx[full]] = _format_full(names, sub[full])
        readings[idx[~full]] = [
            json.dumps({s: v for s, v in zip(names, row, strict=True) if v == v})
            for row in sub[~full].tolist()
        ]
    state = panel["state"]
    extra = np.where(
        (state != "running").to_numpy(),
        np.array([json.dumps({"state": s}) for s in state.cat.categories], dtype=object)[state.cat.codes],
        JSON_NULL,
    )
    received = datetime.now(UTC)
    received_at = _ts_text([np.datetime64(received.replace(tzinfo=None), "us")], sqlite)[0]
    seq = panel["seq"].to_numpy()
    order = np.lexsort((seq, machine_ids[codes], customer_ids[codes]))
    rows = list(
        zip(
            customer_ids[codes][order].tolist(),
            machine_ids[codes][order].tolist(),
            seq[order].tolist(),
            _ts_column(panel["ts"], sqlite)[order].tolist(),
            readings[order].tolist(),
            [None] * n,
            extra[order].tolist(),
            [received_at] * n,
            strict=True,
        )
    )
    return Chunk(n, rows, counted, False)


def _format_full(names: tuple[str, ...], values: np.ndarray) -> list[str]:
    """JSON objects of rows without NaN, column by column (float repr is what json.dumps writes)."""
    if not len(values):
        return []
    template = "{" + ", ".join(f'"{name}": %s' for name in names) + "}"
    columns = [list(map(repr, values[:, j].tolist())) for j in range(len(names))]
    return [template % row for row in zip(*columns, strict=True)]


def _ts_column(ts: pd.Series, sqlite: bool) -> np.ndarray:
    """Timestamps as the text each backend stores; formatted once per distinct value (mostly one per step)."""
    raw = ts.to_numpy(dtype="datetime64[us]")
    distinct, inverse = np.unique(raw, return_inverse=True)
    return np.array(_ts_text(distinct, sqlite), dtype=object)[inverse]


def _ts_text(values, sqlite: bool) -> list[str]:  # noqa: ANN001
    # SQLAlchemy keeps SQLite timestamps as naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'.
    text = np.datetime_as_string(np.asarray(values, dtype="datetime64[us]"), unit="us").tolist()
    return [s.replace("T", " ") + ("" if sqlite else "+00") for s in text]


def _sqlite_write(conn: Connection, rows: list[tuple]) -> int:
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.executemany(SQLITE_INSERT, rows)
        return cursor.rowcount
    finally:
        cursor.close()


def _pg_write(conn: Connection, rows: list[tuple]) -> int:
    """COPY into a session-local stage table, then insert what is new (COPY itself cannot skip conflicts)."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {PG_STAGE} (LIKE telemetry INCLUDING DEFAULTS) "
            "ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY {PG_STAGE} ({COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO telemetry ({COLUMNS}) SELECT {COLUMNS} FROM {PG_STAGE} "
            "ON CONFLICT (customer_id, machine_id, seq) DO NOTHING"
        )
        return cursor.rowcount
    finally:
        cursor.close()


def _prefetch(chunks: Iterator[Chunk], depth: int = 2) -> Iterator[Chunk]:
    """Build the next chunks in a thread while the database writes this one (SQLite releases the GIL)."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        box.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            box.put(exc)

    thread = threading.Thread(target=produce, name="servicecast-backfill", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=10)
