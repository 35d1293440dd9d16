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


def describe(sensor: str, dev: float, slope: float, contribution: float, words: str | None = None) -> str:
    """E.g. 'vibration rose 40 % against the same hours of earlier days, trend +12 %/day, +0.31 risk'.

    `words` is the sensor's display name from its machine type; without one the name is spelled out."""
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
    words: Mapping[str, str] | None = None,
) -> tuple[list[list[dict]], list[str]]:
    """Per row: contributions as JSON-ready dicts (largest first) and the top sentences joined;
    `words` names sensors as their machine type's display names do."""
    words = words or {}
    dev = table.reindex(columns=[f"{s}__dev24" for s in sensors]).to_numpy(dtype=float)
    slope = table.reindex(columns=[f"{s}__slope24" for s in sensors]).to_numpy(dtype=float)
    order = np.argsort(-np.abs(contrib), axis=1)
    records, texts = [], []
    for i in range(len(table)):
        items = []
        for j in order[i]:
            c, d = float(contrib[i, j]), float(dev[i, j])
            c = c if np.isfinite(c) else 0.0
            items.append(
                {
                    "sensor": sensors[j],
                    "contribution": round(c, 4),
                    "deviation": round(d, 4) if np.isfinite(d) else None,
                    "text": describe(sensors[j], d, float(slope[i, j]), c, words.get(sensors[j])),
                }
            )
        records.append(items)
        texts.append("; ".join(it["text"] for it in items[:top] if abs(it["contribution"]) >= 0.01))
    return records, texts
