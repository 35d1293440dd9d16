"""The threshold search indexes its data once: the same threshold and figures as the 18 pandas passes."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from models import episodes, training
from models.fleet_model import FleetModel
from models.labels import make_targets
from tests.models import threshold_reference as reference
from tests.models.fleet_support import FAST, PUMP, fleet

T0 = pd.Timestamp("2026-03-01", tz="UTC")
MACHINES = [f"m{k}" for k in range(7)]


def _times(half_hours: np.ndarray) -> pd.DatetimeIndex:
    return T0 + pd.to_timedelta(half_hours * 30, unit="min")


def _risk_table(seed: int) -> tuple[np.ndarray, object, np.ndarray]:
    """Shuffled rows on a half-hour grid (ties, gaps of exactly 24 h), some risks NaN; ts in three forms."""
    rng = np.random.default_rng(seed)
    n = 900
    machines = rng.choice(MACHINES, size=n)
    ts = _times(rng.integers(0, 48 * 25, size=n))
    risk = rng.random(n)
    risk[rng.random(n) < 0.1] = np.nan
    form = seed % 3
    if form == 0:
        shown = pd.Series(ts.as_unit("us"), index=rng.permutation(n) + 1000)  # not a range index
    elif form == 1:
        shown = ts.tz_convert(None).to_numpy()
    else:
        shown = ts
    return machines, shown, risk


def _truth(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Failures (one of a machine without rows) and visits, some finding wear, on the same grid."""
    rng = np.random.default_rng(seed + 100)
    k = 14
    failures = pd.DataFrame(
        {
            "machine": np.r_[rng.choice(MACHINES[:-1], size=k - 1), ["gone"]],
            "ts": _times(rng.integers(0, 48 * 27, size=k)),
            "has_precursor": rng.random(k) < 0.7,
        }
    )
    visits = pd.DataFrame(
        {
            "machine": rng.choice(MACHINES, size=k),
            "ts": _times(rng.integers(0, 48 * 25, size=k)).as_unit("us"),
            "found_mode": np.where(rng.random(k) < 0.5, "bearing_wear", None),
        }
    )
    return failures, visits


def _on_the_edges(alerts: pd.DataFrame, horizon: float) -> pd.DataFrame:
    """Failures at an alert's very start, exactly the horizon after two more, a nanosecond beyond a fourth."""
    span = pd.Timedelta(hours=horizon)
    shift = [pd.Timedelta(0), span, span, span + pd.Timedelta(nanoseconds=1)][: len(alerts)]
    edges = alerts.iloc[: len(shift)]
    return pd.DataFrame({"machine": edges["machine"], "ts": edges["start"] + shift, "has_precursor": True})


@pytest.mark.parametrize("seed", range(6))
def test_alerts_and_their_figures_are_the_old_ones_on_random_tables(seed: int) -> None:
    machines, ts, risk = _risk_table(seed)
    known, visits = _truth(seed)
    end = T0 + pd.Timedelta(days=20)
    table = episodes.RiskTable(machines, ts)
    for thr in (0.1, 0.6, 1.5):
        alerts = table.alerts(risk, thr)
        pd.testing.assert_frame_equal(alerts, reference.alert_starts(machines, ts, risk, thr))
        short = {"reset_hours": 6.0}
        pd.testing.assert_frame_equal(
            episodes.alert_starts(machines, ts, risk, thr, **short),
            reference.alert_starts(machines, ts, risk, thr, **short),
        )
        # as callers pool them: not in machine order, one of a machine the ground truth never names
        pooled = pd.concat([alerts.iloc[::-1], pd.DataFrame({"machine": ["elsewhere"], "start": [T0]})])
        for frame in (alerts, pooled):
            for maintenance, horizon in ((None, 168.0), (visits, 168.0), (visits, 30.0)):
                failures = pd.concat([known, _on_the_edges(alerts, horizon)], ignore_index=True)
                assert np.array_equal(
                    episodes.right_alerts(frame, failures, maintenance, horizon_hours=horizon),
                    reference.right_alerts(frame, failures, maintenance, horizon_hours=horizon),
                )
                for truth, months, until in ((failures, 3.0, end), (failures.iloc[:0], 0.0, None)):
                    args = (frame, truth, maintenance)
                    kw = {"horizon_hours": horizon, "machine_months": months, "end": until}
                    assert episodes.alert_metrics(*args, **kw) == reference.alert_metrics(*args, **kw)


def test_a_row_without_a_time_opens_an_alert_as_before() -> None:
    ts = pd.Series(_times(np.arange(6))).astype(object)
    ts[3] = None
    machines, risk = np.array(["a"] * 3 + ["b"] * 3), np.full(6, 0.9)
    expected = reference.alert_starts(machines, ts, risk, 0.5)
    assert len(expected) == 3
    pd.testing.assert_frame_equal(episodes.alert_starts(machines, ts, risk, 0.5), expected)


@pytest.fixture(scope="module")
def fitted() -> list[tuple[FleetModel, pd.DataFrame, object]]:
    """Pump models of two seeded fleets, with their rows and simulation runs."""
    out = []
    for seed in (5, 6):
        run = fleet(24, 30.0, seed)
        panel = run.telemetry()
        panel = panel[panel["machine_type"] == PUMP].dropna(axis=1, how="all").reset_index(drop=True)
        model = FleetModel(**FAST).fit(panel, make_targets(panel, run.failures, run.maintenance))
        out.append((model, panel, run))
    return out


def _variants(model: FleetModel, panel: pd.DataFrame) -> list[FleetModel]:
    """The model as fitted (its unusable rows NaN), one machine never scored, one that never alerts."""
    machines = panel["machine"].astype(str).to_numpy()
    first, second = np.unique(machines)[:2]
    unscored, quiet = copy.deepcopy(model), copy.deepcopy(model)
    unscored.classifier_.oof_[machines == first] = np.nan
    quiet.classifier_.oof_[machines == second] = 0.0
    assert np.isnan(model.classifier_.oof_).any() and not np.isnan(model.classifier_.oof_).all()
    return [model, unscored, quiet]


# (fleet seed, which variant of its model, with maintenance visits, plateau_middle)
CASES = [
    (0, 0, True, False),
    (0, 0, True, True),
    (1, 0, False, False),
    (1, 1, True, True),
    (0, 2, False, True),
    (1, 2, True, False),
]


def test_the_threshold_and_its_stats_are_the_old_search_s(fitted) -> None:
    chosen = set()
    for fleet_k, variant_k, with_visits, plateau in CASES:
        model, panel, run = fitted[fleet_k]
        variant = _variants(model, panel)[variant_k]
        args = (variant, panel, run.failures, run.maintenance if with_visits else None)
        got = training.choose_threshold(*args, plateau_middle=plateau, resamples=0)
        assert got == reference.choose_threshold(*args, plateau_middle=plateau)
        chosen.add(got[0])
    assert len(chosen) > 1  # the fleets and variants do not all land on one threshold
