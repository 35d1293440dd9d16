"""The live threshold is the trained one: a backtest window replayed through the scorer and policy."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from models import champion, versions
from models.training import train_type
from tests.models import replay
from tests.models.fleet_support import FAST, PUMP, fleet


@pytest.fixture(scope="module")
def trained() -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp, object]:
    """The pumps' rows, the split two days before their end, and the model trained before it: the same for
    the SQLite and the PostgreSQL case, so trained once (each case takes a copy)."""
    run = fleet(40, 30.0)
    full = run.telemetry()
    full = full[full["machine_type"] == PUMP].reset_index(drop=True)
    panel = full.dropna(axis=1, how="all").assign(machine=full["machine"].astype(str))
    split = pd.to_datetime(full["ts"], utc=True).max() - pd.Timedelta(days=2)
    model, _ = train_type(panel, run.failures, run.maintenance, until=split, **FAST)
    return full, panel, split, model


@pytest.mark.slow
def test_replaying_a_backtest_window_opens_the_alerts_the_backtest_counted(engine, trained) -> None:
    run = fleet(40, 30.0)
    full, panel, split, model = (copy.deepcopy(x) for x in trained)
    _, counted = champion.window_alerts(model, panel, split)
    assert model.threshold_ != 0.5 and len(counted) >= 3  # a window where the two thresholds differ

    version = versions.register(engine, model=model, machine_type=PUMP)
    opened = replay.opened_alerts(engine, run, full, split)
    assert {v for _, _, v, _ in opened} == {version}
    live = sorted((m, t) for m, t, _, _ in opened)
    backtest = sorted(zip(counted["machine"], counted["start"], strict=True))
    assert live == backtest
