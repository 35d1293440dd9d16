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


def name(mode: str | None, specs: Mapping[str, SensorSpec] | None = None) -> str:
    """A failure mode as a person reads it: 'bearing wear'; an OEM limit's or a trend's (cold start,
    `limit:<sensor>`, `trend:<sensor>`) names the sensor as its type does, e.g. 'vibration beyond its OEM
    limit' (a sensor the type does not describe spelled out)."""
    kind, _, sensor = (mode or "").partition(":")
    if sensor and kind in ("limit", "trend"):
        words = limits.spec_of(specs or {}, sensor).words
        return f"{words} beyond its OEM limit" if kind == "limit" else f"{words} trending to its limit"
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
