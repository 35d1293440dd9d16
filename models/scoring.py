"""The scoring loop: rescore machines with new telemetry and write one `predictions` row per machine.

Watermark: `score_state.last_received_at` per machine, the newest arrival time (the ingester's clock,
which no device can set) scored. A machine is due when its newest stored `received_at` is later; the
scorer reads only the history the active model's features depend on (`history_hours`), scores the due
machines of a type in batches, writes predictions and moves the watermarks (to the newest arrival seen
when the pass began) in one transaction, so a crash rescores a batch at worst and never skips one. A
spoofed `seq` or `ts` moves nothing: `ts` only picks the history window, within the contract's bounds.

Shards: `Shard(i, n)` scores the machines whose id hashes to bucket i of n, so n scorer processes split
the fleet without overlap. The watermark is per machine, hence per shard too: shards never write the same
`score_state` row, a restarted shard resumes from its machines' watermarks, and a fleet re-split into
another n keeps every watermark. The policy reads predictions by id: shards write their batches in turn
(`dialect.serialize`), so a prediction id never becomes visible after a larger one. Two passes over the same
machines (a worker and a manual `servicecast score --once`) each read them as due: the second to write
drops those the first scored meanwhile, so a machine gets one prediction per arrival scored.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, func, or_, select, true

from fleet import dialect, panels
from fleet.db import for_writing
from fleet.tables import Machine, Prediction, ScoreState, Telemetry, utcnow
from models import event_features, features, statuses, versions
from models.fleet_model import FleetModel
from models.shards import ALL, Shard

log = logging.getLogger(__name__)
Models = dict[str, tuple[str, FleetModel]]
PREDICTIONS_LOCK = 7_304_117_001  # serialises prediction writes across scorer shards (PostgreSQL)
# Machines sending up to every 4 h (6 h / `time_base.HOLD`) get their full-history features; a pump's
# scorer reads 77.5 h instead of 71.5 h.
HELD_HOURS = 6.0


@dataclass
class ScoreReport:
    """What one pass did."""

    machines: int = 0
    predictions: int = 0
    skipped_no_model: int = 0
    untrained: set[str] = field(default_factory=set)  # types of the skipped machines
    unreadable: dict[str, str] = field(default_factory=dict)  # type -> why its active model did not load
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def skipped(self) -> str:
        """The machines without a model, and what to do about them, in words."""
        text = f"{self.skipped_no_model} without a model"
        if self.untrained:
            text += f" ({', '.join(sorted(self.untrained))}: no version trained yet, run `servicecast train`)"
        for machine_type, reason in sorted(self.unreadable.items()):
            text += f" ({machine_type}: {reason})"
        return text

    @property
    def machines_per_s(self) -> float:
        """Machines scored per second of the pass."""
        return self.machines / self.seconds if self.seconds else 0.0


def history_hours(model: FleetModel) -> float:
    """Hours of telemetry before a machine's newest row that the model's features depend on.

    Reading rows with ts >= newest - history gives `lookback_hours` of rows (the newest included); half a
    step of slack absorbs timestamp jitter. A machine slower than its type's step fills the oldest steps
    with a reading held from before them (`models.time_base`): `HELD_HOURS` more reach it.
    """
    feats = model.features_
    return feats.lookback_hours() - feats.step_hours_ / 2 + HELD_HOURS


def due_machines(engine: Engine, shard: Shard = ALL) -> pd.DataFrame:
    """The shard's machines with rows that arrived after their watermark: id, customer, type, arrival, ts.

    Two index look-ups per machine (newest arrival on (machine_id, received_at), newest ts on
    (machine_id, ts)), not a scan of the telemetry table.
    """
    newest_arrival = (
        select(func.max(Telemetry.received_at)).where(Telemetry.machine_id == Machine.id).scalar_subquery()
    )
    newest_ts = select(func.max(Telemetry.ts)).where(Telemetry.machine_id == Machine.id).scalar_subquery()
    machines = (
        select(
            Machine.id.label("machine_id"),
            Machine.customer_id,
            newest_arrival.label("max_received"),
            newest_ts.label("max_ts"),
            Machine.machine_type,
            ScoreState.last_received_at,
        )
        .outerjoin(ScoreState, ScoreState.machine_id == Machine.id)
        .where(shard.where(Machine.id) if shard.count > 1 else true())
        .subquery()
    )
    due = or_(
        machines.c.last_received_at.is_(None) & machines.c.max_received.is_not(None),
        machines.c.max_received > machines.c.last_received_at,
    )
    query = select(machines).where(due).order_by(machines.c.machine_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    columns = ["machine_id", "customer_id", "max_received", "max_ts", "machine_type", "last_received_at"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["max_ts"] = pd.to_datetime(frame["max_ts"], utc=True)
    return frame


def _numbers(values: pd.Series) -> list[float | None]:
    """Floats with None for NaN/inf (JSON- and NULL-safe)."""
    arr = values.to_numpy(dtype=float)
    ok = np.isfinite(arr)
    return [v if k else None for v, k in zip(arr.tolist(), ok.tolist(), strict=True)]


def _times(ts: pd.Series, hours: pd.Series) -> list[datetime | None]:
    """ts + hours as datetimes, None where hours is missing."""
    h = hours.to_numpy(dtype=float)
    ok = np.isfinite(h)
    stamps = pd.DatetimeIndex(ts + pd.to_timedelta(np.where(ok, h, 0.0), unit="h")).to_pydatetime()
    return [t if k else None for t, k in zip(stamps, ok.tolist(), strict=True)]


def _labels(values: pd.Series) -> list[str | None]:
    return [v if isinstance(v, str) else None for v in values.tolist()]


def _remaining_life(scores: pd.DataFrame) -> dict[str, list[float | None]]:
    """RUL and band per row, None on a row whose risk no failure model made (`statuses.NO_FAILURE_MODEL`)."""
    made = ~scores["status"].isin(statuses.NO_FAILURE_MODEL)
    return {col: _numbers(scores[col].where(made)) for col in ("rul_hours", "rul_low", "rul_high")}


def prediction_rows(scores: pd.DataFrame, due: pd.DataFrame, version: str, horizon: float) -> list[dict]:
    """`predictions` rows from `FleetModel.predict_frame` output (machine = machine id)."""
    customers = dict(zip(due["machine_id"].tolist(), due["customer_id"].tolist(), strict=True))
    ts = pd.Series(pd.to_datetime(scores["ts"], utc=True)).reset_index(drop=True)
    scores = scores.reset_index(drop=True)
    columns = {
        "machine_id": [int(m) for m in scores["machine"].tolist()],
        "ts": list(pd.DatetimeIndex(ts).to_pydatetime()),
        "status": scores["status"].tolist(),
        "risk": _numbers(scores["risk"]),
        "failure_mode": _labels(scores["failure_mode"]),
        "likely_modes": scores["likely_modes"].tolist(),  # JSON-ready from modes.likely_modes
        **_remaining_life(scores),
        "eta": _times(ts, scores["eta_h"]),
        "eta_low": _times(ts, scores["eta_low_h"]),
        "eta_high": _times(ts, scores["eta_high_h"]),
        "eta_sensor": _labels(scores["eta_sensor"]),
        "anomaly_score": _numbers(scores["anomaly_score"]),
        "contributions": scores["contributions"].tolist(),  # JSON-ready from explain.explain_rows
        "explanation": scores["explanation"].tolist(),
    }
    fixed = {"created_at": utcnow(), "horizon_hours": horizon, "model_version": version}
    names = list(columns)
    rows = []
    for values in zip(*columns.values(), strict=True):
        row = dict(zip(names, values, strict=True))
        row["customer_id"] = int(customers[row["machine_id"]])
        row.update(fixed)
        rows.append(row)
    return rows


def _advance(conn: Connection, batch: pd.DataFrame) -> None:
    now = utcnow()
    rows = [
        {"machine_id": int(m), "last_received_at": pd.Timestamp(at).to_pydatetime(), "scored_at": now}
        for m, at in zip(batch["machine_id"].tolist(), batch["max_received"].tolist(), strict=True)
    ]
    stmt = dialect.insert(conn, ScoreState.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["machine_id"],
        set_={"last_received_at": stmt.excluded.last_received_at, "scored_at": stmt.excluded.scored_at},
    )
    conn.execute(stmt, rows)


Job = tuple[str, FleetModel, pd.DataFrame]  # version, model, batch of due machines


def _read_starts(batch: pd.DataFrame, history: timedelta) -> list[tuple[datetime, list[int]]]:
    """The batch's machines in groups, each read from one start: none from more than two histories before
    its newest row (a machine whose newest rows are months old, e.g. imported history, would otherwise
    make the batch read months of every other machine)."""
    ordered = batch.sort_values("max_ts", ascending=False)
    groups: list[list[tuple[int, pd.Timestamp]]] = []
    for machine, ts in zip(ordered["machine_id"].tolist(), ordered["max_ts"].tolist(), strict=True):
        if not groups or ts < groups[-1][0][1] - history:
            groups.append([])
        groups[-1].append((int(machine), ts))
    return [(group[-1][1].to_pydatetime() - history, [m for m, _ in group]) for group in groups]


def _read_batch(engine: Engine, job: Job) -> pd.DataFrame:
    _, model, batch = job
    sensors = model.sensors_read()
    with engine.connect() as conn:
        parts = [
            panels.read_panel(conn, machine_ids=ids, since=since, sensors=sensors)
            for since, ids in _read_starts(batch, timedelta(hours=history_hours(model)))
        ]
        panel = features.one_row_per_time(pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0])
        return event_features.add(conn, panel, getattr(model.features_, "extras_", []))


def _unscored(conn: Connection, batch: pd.DataFrame) -> pd.Series:
    """Per machine of the batch, whether no other pass scored what it read: its watermark, as committed
    now, is still older than the newest arrival the batch saw."""
    ids = [int(m) for m in batch["machine_id"].tolist()]
    query = select(ScoreState.machine_id, ScoreState.last_received_at).where(ScoreState.machine_id.in_(ids))
    marks = dict(conn.execute(query).all())
    seen = [pd.Timestamp(at).to_pydatetime() for at in batch["max_received"].tolist()]
    return pd.Series(
        [marks.get(m) is None or marks[m] < at for m, at in zip(ids, seen, strict=True)], index=batch.index
    )


def write_batch(conn: Connection, rows: list[dict], batch: pd.DataFrame) -> list[dict]:
    """Insert a batch's predictions and move its watermarks in the caller's transaction, shards in turn;
    returns the rows written.

    Two passes over the same machines (a worker and a manual `servicecast score --once`) both read them as
    due: the one that writes second drops the machines the other scored meanwhile, read after its turn
    came (SQLite: the caller's transaction holds the write lock from BEGIN, `fleet.db.for_writing`).
    """
    dialect.serialize(conn, PREDICTIONS_LOCK)
    unscored = _unscored(conn, batch)
    batch = batch[unscored]
    kept = set(batch["machine_id"].tolist())
    rows = [row for row in rows if row["machine_id"] in kept]
    if rows:
        conn.execute(Prediction.__table__.insert(), rows)
        _advance(conn, batch)
    return rows


def score_once(
    *, engine: Engine, models: Models | None = None, batch_machines: int = 2500, shard: Shard = ALL
) -> ScoreReport:
    """Score every due machine of the shard once with the active model of its type; returns counts and timing.

    A reader thread fetches the next batch while this one is scored (the database works without the
    GIL), so reading and scoring overlap on two cores. Each batch's predictions and watermarks are
    written in one transaction; rows that arrive after a batch was read stay above its watermark.
    """
    started = time.perf_counter()
    report = ScoreReport()
    models = versions.load_active(engine, unreadable=report.unreadable) if models is None else models
    due = due_machines(engine, shard)
    jobs: list[Job] = []
    for machine_type, group in due.groupby("machine_type", sort=True):
        if machine_type not in models:
            report.skipped_no_model += len(group)
            if machine_type not in report.unreadable:
                report.untrained.add(str(machine_type))
            continue
        version, model = models[machine_type]
        jobs += [
            (version, model, group.iloc[i : i + batch_machines]) for i in range(0, len(group), batch_machines)
        ]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="score-read") as reader:
        pending = reader.submit(_read_batch, engine, jobs[0]) if jobs else None
        for k, (version, model, batch) in enumerate(jobs):
            panel = pending.result()
            pending = reader.submit(_read_batch, engine, jobs[k + 1]) if k + 1 < len(jobs) else None
            if panel.empty:
                continue
            scores = model.predict_frame(panel)
            rows = prediction_rows(scores, batch, version, model.horizon_hours)
            with for_writing(engine).begin() as conn:
                rows = write_batch(conn, rows, batch)
            report.machines += len(rows)
            report.predictions += len(rows)
            report.statuses.update(row["status"] for row in rows)
    report.seconds = time.perf_counter() - started
    return report


def run(
    *,
    engine: Engine,
    interval_s: float = 30.0,
    once: bool = False,
    max_passes: int | None = None,
    shard: Shard = ALL,
) -> None:
    """Score in passes until stopped; reloads the active models each pass (promotion takes effect at once)."""
    passes = 0
    while True:
        report = score_once(engine=engine, shard=shard)
        log.info(
            "shard %s: scored %d machines in %.1f s (%s); %s",
            shard,
            report.machines,
            report.seconds,
            dict(report.statuses),
            report.skipped(),
        )
        passes += 1
        if once or (max_passes is not None and passes >= max_passes):
            return
        time.sleep(interval_s)
