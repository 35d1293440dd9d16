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
from sqlalchemy import Engine
from sqlalchemy.engine import Dialect

from fleet import dialect, telemetry
from simulators import ground_truth
from simulators.engine import SimulationRun
from simulators.machine_types import MACHINE_TYPES, SENSOR_COLUMNS
from simulators.registration import register_machines

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
    ids = register_machines(engine=engine, machines=run.machines)
    run_id = ground_truth.write_run(engine, run, ids)
    keys = list(zip(run.machines["tenant"], run.machines["machine"], strict=True))
    customer_ids = np.array([ids[k][0] for k in keys], dtype=np.int64)
    machine_ids = np.array([ids[k][1] for k in keys], dtype=np.int64)
    rows = stored = readings = 0
    chunks = _chunks(run, engine, customer_ids, machine_ids, chunk_machines, chunk_steps)
    for chunk in _prefetch(chunks):
        if not chunk.complete:
            with engine.begin() as conn:
                stored += telemetry.write_rows(conn, chunk.rows)
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
    for panel in run.iter_panels(chunk_machines=chunk_machines, chunk_steps=chunk_steps):
        codes = panel["machine"].cat.codes.to_numpy()
        present = telemetry.count_stored(
            engine,
            machine_ids=machine_ids[np.unique(codes)].tolist(),
            seqs=(int(panel["seq"].min()), int(panel["seq"].max())),
        )
        if present == len(panel):
            yield Chunk(len(panel), [], _count_readings(panel), True)
            continue
        yield panel_rows(panel, customer_ids, machine_ids, backend=engine.dialect)


def _count_readings(panel: pd.DataFrame) -> int:
    return int(np.isfinite(panel[list(SENSOR_COLUMNS)].to_numpy()).sum())


def panel_rows(
    panel: pd.DataFrame, customer_ids: np.ndarray, machine_ids: np.ndarray, *, backend: Dialect
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
        None,  # SQL NULL, as the ingester writes a message without extra fields
    )
    received = datetime.now(UTC)
    received_at = dialect.ts_texts([np.datetime64(received.replace(tzinfo=None), "us")], backend)[0]
    seq = panel["seq"].to_numpy()
    order = np.lexsort((seq, machine_ids[codes], customer_ids[codes]))
    rows = list(
        zip(
            customer_ids[codes][order].tolist(),
            machine_ids[codes][order].tolist(),
            seq[order].tolist(),
            _ts_column(panel["ts"], backend)[order].tolist(),
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


def _ts_column(ts: pd.Series, backend: Dialect) -> np.ndarray:
    """Timestamps as the text each backend stores; formatted once per distinct value (mostly one per step)."""
    raw = ts.to_numpy(dtype="datetime64[us]")
    distinct, inverse = np.unique(raw, return_inverse=True)
    return np.array(dialect.ts_texts(distinct, backend), dtype=object)[inverse]


def _prefetch(chunks: Iterator[Chunk], depth: int = 2) -> Iterator[Chunk]:
    """Build the next chunks in a thread while the database writes this one (SQLite releases the GIL)."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        """Put `item` once there is room; False if the consumer left meanwhile (nobody takes it then)."""
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not hand_over(chunk):
                    return
            hand_over(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            hand_over(exc)

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
