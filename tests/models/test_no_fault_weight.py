"""A "no fault found" finding teaches the classifier: its false alarm's rows weigh more as negatives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import episodes
from models.fleet_estimators import _thin_stably
from models.fleet_model import FleetModel
from models.labels import make_targets
from tests.models.fleet_support import FAST, fleet, pump_data

PARAMS = {**FAST, "max_iter": 40}


@pytest.fixture(scope="module")
def risk_before() -> np.ndarray:
    """Every pump row's risk from the model trained without findings (two tests start from it)."""
    panel, y = pump_data(40, 30.0)
    risk, _ = FleetModel(**PARAMS).fit(panel, y).risk_rows(panel)
    return risk


def test_rows_before_a_no_fault_finding_get_a_lower_risk_after_retraining(risk_before) -> None:
    run = fleet(40, 30.0)
    panel, y = pump_data(40, 30.0)
    risk = risk_before.copy()
    ts = pd.to_datetime(panel["ts"], utc=True)
    alerts = episodes.alert_starts(panel["machine"].astype(str).to_numpy(), ts, risk, 0.5)
    wrong = alerts[~episodes.right_alerts(alerts, run.failures, run.maintenance, horizon_hours=168.0)]
    assert len(wrong) >= 3
    no_faults = pd.DataFrame({"machine": wrong["machine"], "ts": wrong["start"] + pd.Timedelta(hours=24)})

    taught = make_targets(panel, run.failures, run.maintenance, no_faults=no_faults)
    # No event moves: the findings only make censored rows known and weigh the rows they clear.
    assert (taught["ttf_h"].fillna(-1) == y["ttf_h"].fillna(-1)).all()
    cleared = (taught["cleared_h"].to_numpy() <= 168.0) & (taught["ttf_h"].fillna(np.inf).to_numpy() > 168.0)
    hard = cleared & ~np.isnan(risk)
    assert hard.sum() > 100
    alerting = {}
    for name, weight in (("weighted", 5.0), ("unweighted", 1.0)):
        retrained, _ = (
            FleetModel(**PARAMS, no_fault_weight=weight, finding_hours=None)
            .fit(panel, taught)
            .risk_rows(panel)
        )
        alerting[name] = np.mean(retrained[hard] >= 0.5)
    alerting["before"] = np.mean(risk[hard] >= 0.5)
    # Share of the cleared rows that would still alert: the findings' rows alone lower it (they were
    # censored or thinned before); their weight lowers it further.
    assert alerting["weighted"] < 0.7 * alerting["unweighted"] < 0.7 * alerting["before"], alerting


def test_findings_add_their_rows_without_redrawing_the_other_negatives() -> None:
    rng = np.random.default_rng(3)
    mask = rng.random(20_000) < 0.9
    positive = rng.random(20_000) < 0.02
    kept = np.zeros(20_000, dtype=bool)
    before = _thin_stably(mask, positive, kept, 5_000, seed=1)
    kept[rng.choice(np.flatnonzero(mask & ~positive), size=300, replace=False)] = True
    after = _thin_stably(mask, positive, kept, 5_000, seed=1)

    assert set(np.flatnonzero(mask & (positive | kept))) <= set(after)
    # The ordinary negatives sampled before are still there, bar the findings' own rows.
    assert set(before) - set(np.flatnonzero(kept)) <= set(after)


def test_a_finding_weighs_the_rows_of_its_alert_episode_not_the_week_before(risk_before) -> None:
    run = fleet(40, 30.0)
    panel, y = pump_data(40, 30.0)
    risk = risk_before.copy()
    ts = pd.to_datetime(panel["ts"], utc=True)
    alerts = episodes.alert_starts(panel["machine"].astype(str).to_numpy(), ts, risk, 0.5)
    wrong = alerts[~episodes.right_alerts(alerts, run.failures, run.maintenance, horizon_hours=168.0)]
    no_faults = pd.DataFrame({"machine": wrong["machine"], "ts": wrong["start"] + pd.Timedelta(hours=24)})
    taught = make_targets(panel, run.failures, run.maintenance, no_faults=no_faults)
    cleared = taught["cleared_h"].to_numpy()
    negative = taught["ttf_h"].fillna(np.inf).to_numpy() > 168.0
    episode = negative & (cleared <= 48.0) & (risk >= 0.5)  # the rows that alerted until the visit
    assert episode.sum() > 50

    def alerting(**finding: float | None) -> float:
        retrained, _ = FleetModel(**PARAMS, **finding).fit(panel, taught).risk_rows(panel)
        return float(np.mean(retrained[episode] >= 0.5))

    # The same weight spread over the whole horizon before the finding (mostly rows that never alerted)
    # leaves more of the false alarm's own rows alerting than the weight on its episode.
    assert alerting(no_fault_weight=20.0, finding_hours=48.0) < alerting(
        no_fault_weight=20.0, finding_hours=None
    )
