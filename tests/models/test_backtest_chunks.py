"""The backtest scores by chunks of machines and gets what scoring every machine at once gets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models import evaluate
from models.evaluate import backtest
from tests.models.fleet_support import FAST, PUMP, fleet


def test_chunks_of_machines_score_as_the_whole_fleet_at_once(monkeypatch) -> None:
    run = fleet(40, 30.0)
    panel = run.telemetry()
    panel = panel[panel["machine_type"] == PUMP].dropna(axis=1, how="all").reset_index(drop=True)
    split = pd.Timestamp(run.config.start) + pd.Timedelta(days=20)
    chunks = []
    scores = evaluate._scores

    def counted(model, part, rul_rows, chunk_machines):  # noqa: ANN001, ANN202
        chunks.append(chunk_machines)
        return scores(model, part, rul_rows, chunk_machines)

    monkeypatch.setattr(evaluate, "_scores", counted)
    whole = backtest(panel, run.failures, run.maintenance, split=split, chunk_machines=10_000, **FAST)
    chunked = backtest(panel, run.failures, run.maintenance, split=split, chunk_machines=3, **FAST)
    assert chunks == [10_000, 3] and panel["machine"].nunique() > 3
    assert whole["pooled"]["alerts"] > 0 and whole["types"][PUMP]["rul"]["rows"] > 0
    for key in ("alerts", "true_alerts", "precision", "brier", "rul_rmse_hours", "rul_interval_coverage"):
        np.testing.assert_allclose(chunked["pooled"][key], whole["pooled"][key], rtol=1e-9, err_msg=key)
