"""The live threshold is the trained one: a backtest window replayed through the scorer and policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import select

from api import policy
from fleet import telemetry
from fleet.db import session
from fleet.settings import get_settings
from fleet.tables import Alert, Prediction
from models import champion, scoring, versions
from models.training import train_type
from simulators.backfill import panel_rows
from simulators.registration import register_machines
from tests.models.fleet_support import FAST, PUMP, fleet


def _write(engine, panel: pd.DataFrame, customer_ids: np.ndarray, machine_ids: np.ndarray) -> None:
    with engine.begin() as conn:
        telemetry.write_rows(conn, panel_rows(panel, customer_ids, machine_ids, backend=engine.dialect).rows)


def test_replaying_a_backtest_window_opens_the_alerts_the_backtest_counted(engine) -> None:
    run = fleet(40, 30.0)
    full = run.telemetry()
    full = full[full["machine_type"] == PUMP].reset_index(drop=True)
    panel = full.dropna(axis=1, how="all").assign(machine=full["machine"].astype(str))
    split = pd.to_datetime(full["ts"], utc=True).max() - pd.Timedelta(days=2)
    model, _ = train_type(panel, run.failures, run.maintenance, until=split, **FAST)
    _, counted = champion.window_alerts(model, panel, split)
    assert model.threshold_ != 0.5 and len(counted) >= 3  # a window where the two thresholds differ

    version = versions.register(engine, model=model, machine_type=PUMP)
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
            select(Alert.machine_id, Prediction.ts, Alert.model_version).join(
                Prediction, Prediction.id == Alert.first_prediction_id
            )
        ).all()
    assert {v for _, _, v in opened} == {version}
    live = sorted((names[m], pd.Timestamp(t).tz_convert("UTC")) for m, t, _ in opened)
    backtest = sorted(zip(counted["machine"], counted["start"], strict=True))
    assert live == backtest
