"""Part evidence: a part's own code raised while its own sensor moves the way it moved before its failures.

Learned at fit from the training machines' labels, per failure mode: the code whose raising in the last 24 h
is most over-represented before that mode's failures, the sensor whose 24 h deviation moved most before them,
and which way. A part that failed only a few times then borrows what the common parts teach the risk model
through one column (`COLUMN`, the strongest evidence over the parts), and a row where a part's evidence
reaches `NAMES_Z` names that part rather than the mode model's guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.event_features import PREFIX
from models.labels import split_modes

COLUMN = "parts__evidence"
COUNT = f"{PREFIX}count24:"
NAMES_Z = 3.0  # robust sds of the part's sensor beyond its healthy median, while its code is raised


@dataclass(frozen=True, slots=True)
class Part:
    """What announces one failure mode: its code's 24 h count column and its sensor's moving direction."""

    code_column: str
    sensor: str
    centre: float  # healthy rows' median of the sensor's signed 24 h deviation
    scale: float  # their robust sd
    sign: float  # +1: the sensor rose before the mode's failures, -1: it fell


def learn(
    table: pd.DataFrame, modes: np.ndarray, positive: np.ndarray, usable: np.ndarray, sensors: list[str]
) -> dict[str, Part]:
    """Per failure mode among the usable positive rows (`modes`: `labels.make_targets`' `modes`)."""
    codes = [c for c in table.columns if str(c).startswith(COUNT)]
    if not codes or not sensors or not (positive & usable).any():
        return {}
    raised = table[codes].to_numpy(dtype=float) > 0
    rate = raised[usable].mean(axis=0) + 1e-3
    dev = table[[f"{s}__dev24" for s in sensors]].to_numpy(dtype=float)
    healthy = usable & ~positive
    centre = np.nanmedian(dev[healthy], axis=0)
    scale = 1.4826 * np.nanmedian(np.abs(dev[healthy] - centre), axis=0) + 1e-9
    named = np.array([split_modes(m) for m in modes[positive & usable]], dtype=object)
    parts = {}
    for mode in sorted({m for names in named for m in names}):
        rows = np.flatnonzero(positive & usable)[[mode in names for names in named]]
        z = np.nanmedian((dev[rows] - centre) / scale, axis=0)
        if not np.isfinite(z).any():
            continue
        j = int(np.nanargmax(np.abs(z)))
        lift = raised[rows].mean(axis=0) / rate
        parts[mode] = Part(codes[int(np.argmax(lift))], sensors[j], centre[j], scale[j], float(np.sign(z[j])))
    return parts


def per_part(table: pd.DataFrame, parts: dict[str, Part]) -> pd.DataFrame:
    """Per row and part: its sensor's move its way in robust sds (≥ 0) while its code is raised, else 0."""
    out = {}
    for mode, p in parts.items():
        z = p.sign * (table[f"{p.sensor}__dev24"].to_numpy(dtype=float) - p.centre) / p.scale
        raised = table[p.code_column].to_numpy(dtype=float) > 0
        out[mode] = np.where(raised, np.maximum(np.nan_to_num(z, nan=0.0), 0.0), 0.0)
    return pd.DataFrame(out, index=table.index, columns=list(parts))


def add(table: pd.DataFrame, parts: dict[str, Part]) -> pd.DataFrame:
    """`table` with `COLUMN`: the strongest part evidence of each row (0 without any)."""
    evidence = per_part(table, parts)
    return table.assign(**{COLUMN: evidence.max(axis=1) if len(evidence.columns) else 0.0})


def name(shares: pd.DataFrame, table: pd.DataFrame, parts: dict[str, Part]) -> pd.DataFrame:
    """Mode shares, where a row's evidence reaches `NAMES_Z`: 1 for those parts, 0 for the others."""
    strong = (per_part(table, parts) >= NAMES_Z).reindex(columns=shares.columns, fill_value=False)
    rows = strong.any(axis=1).to_numpy()
    out = shares.copy()
    out.loc[rows] = strong.loc[rows].astype(float).to_numpy()
    return out
