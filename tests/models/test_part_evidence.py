"""Part evidence: each part's code and sensor learned from labels; a rare part caught through common ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models import part_evidence
from models.fleet_estimators import FailureClassifier
from models.fleet_features import FleetFeatures

SENSORS = ["s1", "s2", "s3"]
CODES = ["A", "B", "C"]
# Part a: code A, s1 rises; part b: code B, s2 falls; part c: code C, s3 rises, and fails far less often.
PARTS = {"a": ("A", "s1", 1.0), "b": ("B", "s2", -1.0), "c": ("C", "s3", 1.0)}


def _features() -> FleetFeatures:
    ts = pd.date_range("2026-01-01", periods=4, freq="h", tz="UTC")
    panel = pd.DataFrame({"machine": "m", "ts": ts, **{s: [1.0, 1.1, 0.9, 1.0] for s in SENSORS}})
    return FleetFeatures(sensors=SENSORS).fit(panel)


def _rows(rng: np.random.Generator, n: int, part: str | None, machine: str) -> pd.DataFrame:
    """`n` rows of one machine: healthy (a code now and then, sensors still) or `part`'s last day."""
    dev = rng.normal(0.0, 0.01, (n, len(SENSORS)))
    raised = rng.random((n, len(CODES))) < 0.03
    if part:
        code, sensor, sign = PARTS[part]
        dev[:, SENSORS.index(sensor)] += sign * 0.1
        raised[:, CODES.index(code)] = True
    else:  # a code without its sensor moving, and a sensor moving without its code, are no failure
        dev[: n // 4, 0] += 0.1
        raised[n // 2 : n // 2 + n // 4, 0] = True
    table = pd.DataFrame({f"{s}__dev24": dev[:, j] for j, s in enumerate(SENSORS)})
    table[[f"ev:count24:{c}" for c in CODES]] = raised.astype(float)
    y = pd.DataFrame(
        {
            "ttf_h": 10.0 if part else np.inf,
            "censor_h": 1000.0,
            "mode": part,
            "modes": part,
        },
        index=table.index,
    )
    return table.assign(history_h=100.0, coverage=1.0, machine=machine), y


def _fleet(seed: int, rare: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Machines failing by part a or b (many), by part c (`rare`), and healthy ones."""
    rng = np.random.default_rng(seed)
    kinds = ["a"] * 8 + ["b"] * 8 + ["c"] * rare + [None] * 12
    parts = [_rows(rng, 24 if kind else 200, kind, f"m{i}") for i, kind in enumerate(kinds)]
    table = pd.concat([t for t, _ in parts], ignore_index=True)
    y = pd.concat([y for _, y in parts], ignore_index=True)
    return table.drop(columns="machine"), y, table["machine"].to_numpy()


def test_each_part_gets_its_own_code_sensor_and_direction_from_the_labels() -> None:
    table, y, _ = _fleet(seed=1, rare=2)
    positive = y["ttf_h"].to_numpy() <= 24.0
    modes = y["modes"].to_numpy(dtype=object)
    parts = part_evidence.learn(table, modes, positive, np.ones(len(y), dtype=bool), SENSORS)
    assert {m: (p.code_column, p.sensor, p.sign) for m, p in parts.items()} == {
        m: (f"ev:count24:{code}", sensor, sign) for m, (code, sensor, sign) in PARTS.items()
    }


def test_a_rare_part_with_its_code_and_sensor_is_alerted_and_named() -> None:
    table, y, machines = _fleet(seed=2, rare=1)
    probe, _, _ = _fleet(seed=3, rare=3)
    probe = probe.iloc[-12 * 200 - 3 * 24 : -12 * 200]  # part c's last days on new machines
    risks, named = {}, {}
    for evidence in (False, True):
        clf = FailureClassifier(horizon_hours=24.0, folds=2, max_iter=30, part_evidence=evidence)
        clf.fit_table(table, y, _features(), machines)
        risks[evidence] = clf.risk_table(probe).mean()
        named[evidence] = (clf.mode_table(probe) == "c").mean()
    assert risks[True] > 0.5 > risks[False]
    assert named[True] == 1.0


def test_strong_evidence_names_its_part_and_weak_evidence_leaves_the_mode_model() -> None:
    table = pd.DataFrame(
        {
            "s1__dev24": [0.0, 0.0, 0.0],
            "s2__dev24": [-0.1, 0.1, -0.1],
            "ev:count24:A": [0.0, 0.0, 0.0],
            "ev:count24:B": [1.0, 1.0, 0.0],
        }
    )
    parts = {
        "a": part_evidence.Part("ev:count24:A", "s1", 0.0, 0.01, 1.0),
        "b": part_evidence.Part("ev:count24:B", "s2", 0.0, 0.01, -1.0),
    }
    shares = pd.DataFrame({"a": [0.9, 0.9, 0.9], "b": [0.1, 0.1, 0.1]})
    out = part_evidence.name(shares, table, parts)
    # B raised with s2 falling: b alone; s2 rising the wrong way, or B not raised: the mode model's shares
    assert out.to_dict("list") == {"a": [0.0, 0.9, 0.9], "b": [1.0, 0.1, 0.1]}
    assert part_evidence.add(table, parts)[part_evidence.COLUMN].tolist() == [10.0, 0.0, 0.0]
