"""A backtest window replayed through the scorer and the policy, one step of telemetry at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import select

from api import policy
from fleet import telemetry
from fleet.db import session
from fleet.settings import get_settings
from fleet.tables import Alert, Prediction
from models import scoring
from simulators.backfill import panel_rows
from simulators.engine import SimulationRun
from simulators.registration import register_machines


def _write(engine, panel: pd.DataFrame, customer_ids: np.ndarray, machine_ids: np.ndarray) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        telemetry.write_rows(conn, panel_rows(panel, customer_ids, machine_ids, backend=engine.dialect).rows)


def opened_alerts(engine, run: SimulationRun, full: pd.DataFrame, split: pd.Timestamp) -> list[tuple]:  # noqa: ANN001
    """Store `full` before `split`, then score and run the policy after each later step; every alert opened
    as (machine name, ts of its first prediction, model version, evidence)."""
    ids = register_machines(engine=engine, machines=run.machines)
    pairs = [ids[k] for k in zip(run.machines["tenant"], run.machines["machine"], strict=True)]
    customer_ids = np.array([c for c, _ in pairs], dtype=np.int64)
    machine_ids = np.array([m for _, m in pairs], dtype=np.int64)
    names = dict(zip(machine_ids.tolist(), run.machines["machine"].astype(str), strict=True))
    ts = pd.to_datetime(full["ts"], utc=True)
    _write(engine, full[ts < split], customer_ids, machine_ids)
    settings = get_settings()
    for step in sorted(ts[ts >= split].unique()):
        _write(engine, full[ts == step], customer_ids, machine_ids)
        scoring.score_once(engine=engine)
        policy.run_once(engine=engine, settings=settings)
    with session(engine) as sess:
        opened = sess.execute(
            select(Alert.machine_id, Prediction.ts, Alert.model_version, Alert.evidence).join(
                Prediction, Prediction.id == Alert.first_prediction_id
            )
        ).all()
    return [(names[m], pd.Timestamp(t).tz_convert("UTC"), v, e) for m, t, v, e in opened]
