"""The scoring loop: rescore machines with new telemetry and write one `predictions` row per machine.

Watermark: `score_state.last_seq` per machine. A machine is due when its newest stored seq is above it;
the scorer reads only the history the active model of its type needs (`FleetModel.history_hours`),
scores all due machines of a type in batches, writes predictions and moves the watermarks in the same
transaction, so a crash rescores a batch at worst and never skips one.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from fleet.tables import Machine, Prediction, ScoreState, Telemetry, utcnow
from models import registry
from models.fleet_model import FleetModel

log = logging.getLogger(__name__)
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
Models = dict[str, tuple[str, FleetModel]]


@dataclass
class ScoreReport:
    """What one pass did."""

    machines: int = 0
    predictions: int = 0
    skipped_no_model: int = 0
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def machines_per_s(self) -> float:
        """Machines scored per second of the pass."""
        return self.machines / self.seconds if self.seconds else 0.0


def history_hours(model: FleetModel) -> float:
    """Hours of telemetry the model needs before a machine's newest row."""
    feats = model.features_
    return feats.lookback_hours() + feats.step_hours_


def due_machines(engine: Engine) -> pd.DataFrame:
    """Machines whose newest stored seq is above their watermark: id, customer, type, newest seq and ts."""
    newest = (
        select(
            Telemetry.machine_id,
            Telemetry.customer_id,
            func.max(Telemetry.seq).label("max_seq"),
            func.max(Telemetry.ts).label("max_ts"),
        )
        .group_by(Telemetry.machine_id, Telemetry.customer_id)
        .subquery()
    )
    query = (
        select(newest, Machine.machine_type, func.coalesce(ScoreState.last_seq, 0).label("last_seq"))
        .join(Machine, Machine.id == newest.c.machine_id)
        .outerjoin(ScoreState, ScoreState.machine_id == newest.c.machine_id)
        .where(newest.c.max_seq > func.coalesce(ScoreState.last_seq, 0))
        .order_by(newest.c.machine_id)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(
        rows, columns=["machine_id", "customer_id", "max_seq", "max_ts", "machine_type", "last_seq"]
    )
    frame["max_ts"] = pd.to_datetime(frame["max_ts"], utc=True)
    return frame


_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def read_panel(conn: Connection, machine_ids: list[int], since: datetime, sensors: list[str]) -> pd.DataFrame:
    """Telemetry of these machines from `since` as a long panel (machine = machine id).

    The database extracts each sensor from the JSON readings (json_extract / ->>), so Python never
    parses JSON row by row.
    """
    bad = [s for s in sensors if not _NAME.match(s)]
    if bad:
        raise ValueError(f"sensor names must be identifiers: {bad}")
    marks = ",".join(str(int(m)) for m in machine_ids)
    if conn.dialect.name == "sqlite":
        picks = "".join(f", json_extract(readings, '$.{s}')" for s in sensors)
        state = "json_extract(extra, '$.state')"
        param: object = pd.Timestamp(since).tz_convert("UTC").tz_localize(None).isoformat(" ", "microseconds")
        mark = "?"
    else:
        picks = "".join(f", (readings->>'{s}')::float8" for s in sensors)
        state = "extra->>'state'"
        param, mark = since, "%s"
    sql = (
        f"SELECT machine_id, seq, ts, {state}{picks} FROM telemetry "
        f"WHERE machine_id IN ({marks}) AND ts >= {mark}"
    )
    rows = conn.exec_driver_sql(sql, (param,)).cursor.fetchall()
    if not rows:
        return pd.DataFrame(columns=["machine", "seq", "ts", "state", *sensors])
    cols = list(zip(*rows, strict=True))
    frame = pd.DataFrame(
        {"machine": np.asarray(cols[0], dtype=np.int64), "seq": np.asarray(cols[1], dtype=np.int64)}
    )
    frame["ts"] = pd.to_datetime(pd.Series(cols[2]), utc=True, format="ISO8601")
    frame["state"] = pd.Series(cols[3], dtype=object).fillna("running").to_numpy()
    for j, s in enumerate(sensors):
        frame[s] = np.asarray(cols[4 + j], dtype=float)
    return frame


def _clean(value: object) -> object:
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def _when(ts: pd.Timestamp, hours: float) -> datetime | None:
    return (
        None
        if hours is None or not np.isfinite(hours)
        else (ts + timedelta(hours=float(hours))).to_pydatetime()
    )


def prediction_rows(scores: pd.DataFrame, due: pd.DataFrame, version: str, horizon: float) -> list[dict]:
    """`predictions` rows from `FleetModel.score` output (machine = machine id)."""
    customers = dict(zip(due["machine_id"], due["customer_id"], strict=True))
    now = utcnow()
    rows = []
    for r in scores.itertuples(index=False):
        ts = pd.Timestamp(r.ts)
        rows.append(
            {
                "customer_id": int(customers[r.machine]),
                "machine_id": int(r.machine),
                "ts": ts.to_pydatetime(),
                "created_at": now,
                "status": r.status,
                "horizon_hours": horizon,
                "risk": _clean(r.risk),
                "failure_mode": r.failure_mode if isinstance(r.failure_mode, str) else None,
                "rul_hours": _clean(r.rul_hours),
                "rul_low": _clean(r.rul_low),
                "rul_high": _clean(r.rul_high),
                "eta": _when(ts, r.eta_h),
                "eta_low": _when(ts, r.eta_low_h),
                "eta_high": _when(ts, r.eta_high_h),
                "eta_sensor": r.eta_sensor if isinstance(r.eta_sensor, str) else None,
                "anomaly_score": _clean(r.anomaly_score),
                "contributions": _clean(r.contributions),
                "explanation": r.explanation,
                "model_version": version,
            }
        )
    return rows


def _advance(conn: Connection, seqs: dict[int, int]) -> None:
    rows = [{"machine_id": int(m), "last_seq": int(s), "scored_at": utcnow()} for m, s in seqs.items()]
    stmt = _INSERTS[conn.dialect.name](ScoreState.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["machine_id"],
        set_={"last_seq": stmt.excluded.last_seq, "scored_at": stmt.excluded.scored_at},
    )
    conn.execute(stmt, rows)


def score_once(*, engine: Engine, models: Models | None = None, batch_machines: int = 5000) -> ScoreReport:
    """Score every due machine once with the active model of its type; returns counts and timing."""
    started = time.perf_counter()
    models = registry.load_active(engine) if models is None else models
    due = due_machines(engine)
    report = ScoreReport()
    for machine_type, group in due.groupby("machine_type", sort=True):
        if machine_type not in models:
            report.skipped_no_model += len(group)
            continue
        version, model = models[machine_type]
        need = timedelta(hours=history_hours(model))
        sensors = list(model.features_.sensors_)
        for i in range(0, len(group), batch_machines):
            batch = group.iloc[i : i + batch_machines]
            since = batch["max_ts"].min().to_pydatetime() - need
            with engine.begin() as conn:
                panel = read_panel(conn, batch["machine_id"].tolist(), since, sensors)
                if panel.empty:
                    continue
                scores = model.score(panel)
                rows = prediction_rows(scores, batch, version, model.horizon_hours)
                conn.execute(Prediction.__table__.insert(), rows)
                _advance(conn, panel.groupby("machine")["seq"].max().to_dict())
            report.machines += len(scores)
            report.predictions += len(rows)
            report.statuses.update(scores["status"])
    report.seconds = time.perf_counter() - started
    return report


def run(
    *, engine: Engine, interval_s: float = 30.0, once: bool = False, max_passes: int | None = None
) -> None:
    """Score in passes until stopped; reloads the active models each pass (promotion takes effect at once)."""
    passes = 0
    while True:
        report = score_once(engine=engine)
        log.info(
            "scored %d machines in %.1f s (%s); %d without a model",
            report.machines,
            report.seconds,
            dict(report.statuses),
            report.skipped_no_model,
        )
        passes += 1
        if once or (max_passes is not None and passes >= max_passes):
            return
        time.sleep(interval_s)
