"""Per-sensor contributions to a risk, and the sentence a technician reads.

Occlusion, a fast local approximation: a sensor's contribution is how much the risk drops when that
sensor's features are replaced by their healthy reference (the training median of rows without a coming
failure). One extra model call per sensor for the whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from fleet import display
from models.fleet_estimators import FailureClassifier
from models.fleet_features import FleetFeatures, Prepared, rolling_mean


def contributions(classifier: FailureClassifier, table: pd.DataFrame, risk: np.ndarray) -> np.ndarray:
    """Risk minus the risk with each sensor set to its healthy reference: shape (rows, sensors)."""
    sensors = classifier.features_.sensors_
    out = np.zeros((len(table), len(sensors)))
    if not classifier.models_ or not len(table):
        return out
    ref = dict(zip(classifier.columns_, classifier.reference_, strict=True))
    for j, s in enumerate(sensors):
        cols = [c for c in table.columns if c.startswith(f"{s}__")]
        probe = table.copy()
        for c in cols:
            probe[c] = ref[c]
        out[:, j] = risk - classifier.risk_table(probe)
    return out


def reading_trend(features: FleetFeatures, prep: Prepared, at: np.ndarray) -> np.ndarray:
    """Per row `at` and sensor: the change per day of the readings' mean over the deviation's window (24 h)
    from the window before it, as a share of that earlier mean (NaN without a whole earlier window).

    The readings, not the deviation: a climb lifts the reference days too, so the deviation of a sensor
    that only rises can fall ("rose 147 %, trend -28 %/day"). Whole windows, not a slope within one: a
    daily cycle cancels, where a 24 h slope read a healthy two-shift press as ±67 %/day by the hour."""
    w = features.rows(features.window_hours)
    now, _ = rolling_mean(prep.raw, prep.starts, w, at)
    before, _ = rolling_mean(prep.raw, prep.starts, w, np.maximum(at - w, 0))
    before[at - 2 * w + 1 < prep.starts[at]] = np.nan
    per_day = features.rows(24.0) / w
    return (now - before) * per_day / np.maximum(np.abs(before), features.floor_)


def describe(sensor: str, dev: float, slope: float, contribution: float, words: str | None = None) -> str:
    """E.g. 'vibration rose 40 % against the same hours of earlier days, trend +12 %/day, +0.31 risk'.

    `slope` is the readings' trend as `reading_trend` gives it; `words` is the sensor's display name from
    its machine type, without one the name is spelled out."""
    name = words or sensor.replace("_", " ")
    if not np.isfinite(dev):
        return f"{name}: no recent readings, {display.signed(contribution)} risk"
    verb = "rose" if dev >= 0 else "fell"
    text = f"{name} {verb} {abs(dev) * 100:.0f} % against the same hours of earlier days"
    if np.isfinite(slope) and abs(slope) >= 0.02:
        text += f", trend {slope * 100:+.0f} %/day"
    return f"{text}, {display.signed(contribution)} risk"


def explain_rows(
    sensors: list[str],
    table: pd.DataFrame,
    contrib: np.ndarray,
    top: int = 3,
    *,
    trend: np.ndarray,
    words: Mapping[str, str] | None = None,
) -> tuple[list[list[dict]], list[str]]:
    """Per row: contributions as JSON-ready dicts (largest first) and the top sentences joined; `trend`
    is `reading_trend` at the rows, `words` names sensors as their machine type's display names do."""
    words = words or {}
    dev = table.reindex(columns=[f"{s}__dev24" for s in sensors]).to_numpy(dtype=float)
    order = np.argsort(-np.abs(contrib), axis=1)
    records, texts = [], []
    for i in range(len(table)):
        items = []
        for j in order[i]:
            c, d = float(contrib[i, j]), float(dev[i, j])
            # The sentence says the stored figure: rounding it again from the raw value can differ.
            c = round(c, 4) if np.isfinite(c) else 0.0
            items.append(
                {
                    "sensor": sensors[j],
                    "contribution": c,
                    "deviation": round(d, 4) if np.isfinite(d) else None,
                    "text": describe(sensors[j], d, float(trend[i, j]), c, words.get(sensors[j])),
                }
            )
        records.append(items)
        texts.append("; ".join(it["text"] for it in items[:top] if abs(it["contribution"]) >= 0.01))
    return records, texts
