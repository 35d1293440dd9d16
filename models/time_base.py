"""A machine type's time base: every machine's readings placed on the type's step, whatever rate it sends at.

Window features count steps, so a machine must have one row per step of the type for a 24 h window to
span 24 h. Readings become rows of a grid (one per machine and step) by these rules, per reading and
judged by the machine's usual interval there (the median of the `RATE_READINGS` intervals around it: a
run of short intervals is a faster sender from its first one, a lone one a clock that jumped):
- at the type's rate (usual interval within `ON_RATE` steps): one row per reading, as sent, so that clock
  jitter or a skewed clock (seconds to an hour) never moves a reading to another step; an outage (an
  interval of `GAP_STEPS` steps or more) leaves its steps empty;
- faster or slower (a machine of another firmware, a bridge publishing on change): placed by time in
  steps closed on the right, ((k-1)·step, k·step]. A step keeps each sensor's newest reading in it: the
  sample a machine at the type's rate would have sent at the step's end, so a model trained at one rate
  reads the other's readings as its own (a mean would shrink the noise and with it the volatility
  features). A step without a reading holds each sensor's last reading for up to `HOLD` of the
  machine's usual interval, at least one step (its normal silence, or a sensor a bridge sends only on
  change, is not missing data); longer silences stay empty.
A type whose machines all send at its rate gets its rows back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ON_RATE = (2 / 3, 1.5)
GAP_STEPS = 2.5
RATE_READINGS = 9
HOLD = 1.5


@dataclass(frozen=True, slots=True)
class Grid:
    """Where each reading (sorted by machine and time) lands on the grid, and what each grid row may hold."""

    slot: np.ndarray  # grid row of each reading
    size: int
    reading: np.ndarray  # per grid row: the first reading at or after it (its own, or the one ending its gap)
    hold: np.ndarray  # per grid row: steps a sensor's last reading may be held into it (0: none)

    @property
    def identity(self) -> bool:
        """One grid row per reading: nothing to place."""
        return self.size == len(self.slot)


def step_hours(keys: np.ndarray, t: np.ndarray) -> float:
    """The type's step: the median over machines of each machine's median interval (one vote per machine,
    so that a few fast senders do not set the step by their number of rows); 1 h without intervals."""
    same = keys[1:] == keys[:-1]
    gaps = np.diff(t).astype(float)
    ok = same & (gaps > 0)
    if not ok.any():
        return 1.0
    per_machine = pd.Series(gaps[ok]).groupby(keys[1:][ok]).median()
    return float(np.median(per_machine.to_numpy()) / 3.6e12)


def layout(keys: np.ndarray, t: np.ndarray, step_h: float, max_hold_h: float) -> Grid:
    """The grid of readings sorted by machine (`keys`) and time (`t`, ns) at a step of `step_h` hours."""
    n = len(keys)
    every = np.arange(n)
    step = round(step_h * 3.6e12)
    if n < 2:
        return Grid(every, n, every, np.zeros(n))
    same = np.concatenate([[False], keys[1:] == keys[:-1]])
    ratio = np.concatenate([[np.nan], np.diff(t) / step])
    ratio[~same] = np.nan
    if not (same & ((ratio < ON_RATE[0]) | (ratio > ON_RATE[1]))).any():
        return Grid(every, n, every, np.zeros(n))
    usual = _usual(keys, ratio)
    with np.errstate(invalid="ignore"):
        timed = (usual < ON_RATE[0]) | (usual > ON_RATE[1])
        counted = np.where(ratio >= GAP_STEPS, np.round(ratio), 1.0)
    end_of_step = -(-t // step)
    inc = np.where(timed, np.diff(end_of_step, prepend=end_of_step[0]), counted)
    inc[~same] = 1  # a new machine starts a new grid row
    inc[0] = 0
    slot = np.cumsum(inc).astype(np.int64)
    size = int(slot[-1]) + 1
    reading = np.searchsorted(slot, np.arange(size), side="left")
    hold = np.where(timed, np.clip(HOLD * np.nan_to_num(usual), 1.0, max_hold_h / step_h), 0.0)
    return Grid(slot, size, reading, hold[reading])


def _usual(keys: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Per reading, the median interval (in steps) of the `RATE_READINGS` readings around it, NaN where all
    of them are at the type's rate (the median is then too: only readings near an off-rate one are read)."""
    off = (ratio < ON_RATE[0]) | (ratio > ON_RATE[1])
    half = RATE_READINGS // 2
    # "full", cut to the readings: "same" gives max(len, 2 * half + 1) values, past the end of a short window.
    near = np.flatnonzero(np.convolve(off, np.ones(2 * half + 1))[half : half + len(off)] > 0)
    pos = near[:, None] + np.arange(-half, half + 1)
    inside = (pos >= 0) & (pos < len(ratio))
    pos = np.clip(pos, 0, len(ratio) - 1)
    around = np.where(inside & (keys[pos] == keys[near][:, None]) & (ratio[pos] > 0), ratio[pos], np.nan)
    usual = np.full(len(ratio), np.nan)
    seen = ~np.isnan(around).all(axis=1)
    usual[near[seen]] = np.nanmedian(around[seen], axis=1)
    return usual


def place(grid: Grid, values: np.ndarray) -> np.ndarray:
    """Per grid row and column, the newest non-NaN value of the readings placed there (NaN for none)."""
    if grid.identity:
        return values
    out = np.full((grid.size,) + values.shape[1:], np.nan)
    for j in range(values.shape[1]):
        seen = np.flatnonzero(~np.isnan(values[:, j]))
        newest = seen[np.append(grid.slot[seen[1:]] != grid.slot[seen[:-1]], True)] if len(seen) else seen
        out[grid.slot[newest], j] = values[newest, j]
    return out


def place_last(grid: Grid, values: np.ndarray, empty: object) -> np.ndarray:
    """Per grid row, the value of the newest reading placed there (`empty` for rows without one)."""
    if grid.identity:
        return values
    out = np.full(grid.size, empty, dtype=values.dtype)
    newest = np.append(grid.slot[1:] != grid.slot[:-1], True)
    out[grid.slot[newest]] = values[newest]
    return out


def hold(grid: Grid, values: np.ndarray, starts: np.ndarray, running: np.ndarray) -> np.ndarray:
    """`values` with each sensor's last reading held into the following empty steps up to `grid.hold`
    steps after it, never across a stop or into another machine's rows."""
    if grid.identity or not grid.hold.any():
        return values
    g = np.arange(grid.size)
    src = np.maximum.accumulate(np.where(~np.isnan(values), g[:, None], -1), axis=0)
    barrier = np.maximum(np.maximum.accumulate(np.where(running, -1, g)), starts - 1)
    fill = (
        np.isnan(values)
        & running[:, None]
        & (src > barrier[:, None])
        & ((g[:, None] - src) <= grid.hold[:, None])
    )
    held = np.take_along_axis(values, np.maximum(src, 0), axis=0)
    return np.where(fill, held, values)
