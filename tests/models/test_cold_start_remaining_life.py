"""A risk no failure model made carries no remaining life: the scorer stores none for a cold start or a
readings-alone row, so no page, alert or queue order reads the RUL model's cap (336 h) as a time to
failure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import select

from api import policy
from fleet.settings import get_settings
from fleet.tables import Alert, Prediction
from models import cold_start, scoring
from models.fleet_model import SCORE_COLUMNS
from tests.models.test_cold_start_limits import _cold_start_pumps, _send
from tests.models.test_degenerate import _steady


def test_the_scorer_stores_no_remaining_life_for_a_cold_start_type_and_its_alert_is_critical(
    sqlite_engine,
) -> None:
    pumps = _cold_start_pumps(sqlite_engine)
    # Two readings beyond the type's alarm limit (7.1 mm/s, past the on-delay): risk 1.0, no trend to a limit.
    _send(sqlite_engine, pumps[0], range(240, 242), _steady(0, 0) | {"vibration_rms_mm_s": 8.0})

    scoring.score_once(engine=sqlite_engine)
    policy.run_once(engine=sqlite_engine, settings=get_settings())

    with sqlite_engine.connect() as conn:
        rows = conn.execute(
            select(Prediction.status, Prediction.rul_hours, Prediction.rul_low, Prediction.rul_high)
        ).all()
        alert = conn.execute(select(Alert.severity, Alert.lead_time_hours, Alert.risk)).one()
    # Before, every row stored the cap: 336 h with a band of 336-336.
    assert rows and {r[0] for r in rows} == {cold_start.STATUS}
    assert all(r[1:] == (None, None, None) for r in rows), rows
    # Without a crossing the alert has no lead time: severity by its risk alone (it was 'high' at 336 h).
    assert alert == ("critical", None, 1.0)


def test_prediction_rows_keep_the_remaining_life_of_an_ok_row_only() -> None:
    statuses = ["ok", "cold_start", "fallback", "insufficient_data"]
    scores = pd.DataFrame({column: [None] * 4 for column in SCORE_COLUMNS})
    scores = scores.assign(
        machine=[1, 2, 3, 4],
        ts=pd.Timestamp("2026-11-23", tz="UTC"),
        status=statuses,
        rul_hours=[30.0, 336.0, 120.0, np.nan],
        rul_low=[20.0, 336.0, 90.0, np.nan],
        rul_high=[50.0, 336.0, 150.0, np.nan],
        eta_h=[12.0, 30.0, np.nan, np.nan],
        eta_low_h=np.nan,
        eta_high_h=np.nan,
        risk=0.9,
        anomaly_score=0.5,
    )
    due = pd.DataFrame({"machine_id": [1, 2, 3, 4], "customer_id": 7})

    rows = scoring.prediction_rows(scores, due, "v1", 168.0)

    life = [(r["rul_hours"], r["rul_low"], r["rul_high"]) for r in rows]
    assert life == [(30.0, 20.0, 50.0), (None, None, None), (None, None, None), (None, None, None)]
    assert [r["eta"] is not None for r in rows] == [True, True, False, False]  # the crossing stays
