"""Two parts failing at once: the labels name both, and the mode model gives both a share of the risk."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.fleet_estimators import FailureClassifier
from models.labels import make_targets

START = pd.Timestamp("2025-01-01", tz="UTC")
MODES = ("seal", "bearing", "seal+bearing")  # seal: pressure rises; bearing: vibration rises; both at once


def _machine(name: str, modes: tuple[str, ...], days: int, rng: np.random.Generator) -> tuple:
    """Hourly readings with a failure every 10 days; the failing parts' sensors shift 48 h before it."""
    hours = days * 24
    ts = START + pd.to_timedelta(np.arange(hours), unit="h")
    pressure, vibration = rng.normal(100.0, 4.0, hours), rng.normal(40.0, 2.0, hours)
    failures = []
    for k, mode in enumerate(modes):
        at = (k + 1) * 240
        parts = mode.split("+")
        if "seal" in parts:
            pressure[at - 48 : at] += 25.0
        if "bearing" in parts:
            vibration[at - 48 : at] += 12.0
        failures += [(name, ts[at], part) for part in parts]
    panel = pd.DataFrame({"machine": name, "ts": ts, "pressure": pressure, "vibration": vibration})
    return panel, failures


def _fleet(machines: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    panels, failures = [], []
    for i in range(machines):
        modes = tuple(MODES[(i + k) % 3] for k in range(3))
        panel, fails = _machine(f"m{i}", modes, 40, rng)
        panels.append(panel)
        failures += fails
    frame = pd.DataFrame(failures, columns=["machine", "ts", "mode"]).assign(has_precursor=True)
    return pd.concat(panels, ignore_index=True), frame


def test_parts_failing_at_once_are_one_event_naming_both_modes() -> None:
    panel, failures = _fleet(3, seed=1)
    y = make_targets(panel, failures)
    ttf = y["ttf_h"].to_numpy()
    before = (panel["machine"] == "m2").to_numpy() & (ttf > 0) & (ttf <= 48)
    # m2 fails by seal+bearing at day 10, then seal, then bearing.
    assert set(y.loc[before, "modes"]) == {"bearing+seal", "seal", "bearing"}
    assert (
        y.loc[before & (ttf <= 48) & (panel["ts"] < START + pd.Timedelta(days=10)), "modes"] == "bearing+seal"
    ).all()
    assert set(y.loc[before, "mode"]) == {"bearing", "seal"}  # one mode, the first of the pair's


def test_a_coming_pair_gives_both_modes_a_share_and_a_single_failure_one() -> None:
    panel, failures = _fleet(12, seed=2)
    y = make_targets(panel, failures)
    clf = FailureClassifier(horizon_hours=48, folds=2, max_iter=30, random_state=0).fit(panel, y)
    test, test_failures = _fleet(3, seed=3)
    shares = clf.mode_shares_table(clf.features_.transform(test))
    ttf = make_targets(test, test_failures)["ttf_h"].to_numpy()
    modes = make_targets(test, test_failures)["modes"].to_numpy()
    late = (ttf > 0) & (ttf <= 24)  # the shift has been on for a day
    pair, seal, bearing = (late & (modes == m) for m in ("bearing+seal", "seal", "bearing"))
    assert shares.loc[pair, "seal"].median() >= 0.3 and shares.loc[pair, "bearing"].median() >= 0.3
    assert shares.loc[seal, "bearing"].median() < 0.3 and shares.loc[bearing, "seal"].median() < 0.3
    assert (clf.mode_table(clf.features_.transform(test))[seal] == "seal").mean() > 0.9
