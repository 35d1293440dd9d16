"""Which failure modes a prediction names: every mode likely enough given a failure, not only the first."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from fleet.machine_types import SensorSpec
from models import limits

# A mode at least this likely given a failure is named: two parts can fail at once, and the benchmark
# (`benchmarks.azure_pdm`) counts an alerting hour for each mode named here.
MODE_SHARE = 0.3


def likely(shares: pd.DataFrame) -> pd.DataFrame:
    """Per row and mode (`FailureClassifier.mode_shares_table`): whether the mode is named."""
    return shares >= MODE_SHARE


def likely_modes(shares: pd.DataFrame) -> list[list[dict]]:
    """Per row, every named mode with its share, most likely first (ties in column order, as argmax)."""
    values = shares.to_numpy(dtype=float)
    named = likely(shares).to_numpy()
    modes = [str(m) for m in shares.columns]
    order = np.argsort(-values, axis=1, kind="stable")
    return [
        [{"mode": modes[k], "share": round(float(row[k]), 4)} for k in rank if keep[k]]
        for row, keep, rank in zip(values, named, order, strict=True)
    ]


# The cold-start modes in words, per language (`{}` is the sensor as its type names it), and a prediction
# naming no mode as a sentence says it; others read English.
SENSOR_MODES = {
    "en": {
        "limit": "{} beyond its OEM limit",
        "trend": "{} trending to its limit",
        "anomaly": "unusual readings",
        "unnamed": "signs of a coming failure",
    },
    "de": {
        "limit": "{} über dem OEM-Grenzwert",
        "trend": "{} mit Trend zum Grenzwert",
        "anomaly": "ungewöhnliche Messwerte",
        "unnamed": "Anzeichen eines bevorstehenden Ausfalls",
    },
}


def name(
    mode: str | None,
    specs: Mapping[str, SensorSpec] | None = None,
    language: str = "en",
    *,
    in_text: bool = False,
) -> str:
    """A failure mode as a person reads it: 'bearing wear'; a cold start's OEM limit, trend or anomaly
    (`limit:<sensor>`, `trend:<sensor>`, `anomaly`) in `language`, naming the sensor as its type does,
    e.g. 'vibration beyond its OEM limit' (a sensor the type does not describe spelled out). No mode is
    '—' in a table and, `in_text` (an offer's sentence), 'signs of a coming failure' in `language`."""
    kind, _, sensor = (mode or "").partition(":")
    words = SENSOR_MODES.get(language, SENSOR_MODES["en"])
    if sensor and kind in ("limit", "trend"):
        return words[kind].format(limits.spec_of(specs or {}, sensor).words)
    if mode == "anomaly":
        return words["anomaly"]
    if not mode and in_text:
        return words["unnamed"]
    return (mode or "").replace("_", " ") or "—"


def also_possible(likely_modes: list[dict] | None, primary: str | None) -> list[dict]:
    """The named modes other than the most likely one, in order."""
    return [m for m in likely_modes or [] if m["mode"] != primary]


def words(likely_modes: list[dict] | None, primary: str | None) -> str:
    """'also possible: comp2 (41 %), comp3 (32 %), likely given a failure', or '' when none is."""
    others = also_possible(likely_modes, primary)
    if not others:
        return ""
    named = ", ".join(f"{m['mode'].replace('_', ' ')} ({m['share'] * 100:.0f} %)" for m in others)
    return f"also possible: {named}, likely given a failure"
