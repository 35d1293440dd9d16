"""The alert threshold's rule judged over resamples of the training machines, so no few machines decide it.

The rule: the lowest grid notch whose training alerts meet the precision target and the false-alarm bound,
else the lowest that meets the bound, else the highest. It takes the first notch where a noisy curve
crosses a line, so one machine's alerts more or less can move it by several notches. The threshold is the
median of the rule's choice over bootstrap resamples of the machines (a fixed seed: the same data give the
same threshold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models import episodes

RESAMPLES = 51  # odd, so the median is one of the grid's notches
SEED = 0


@dataclass(frozen=True)
class MachineCounts:
    """Per threshold notch (rows) and machine (columns) of the training alerts, and each machine's totals."""

    alerts: np.ndarray  # judged alerts
    right: np.ndarray  # of them, right ones
    months: np.ndarray  # per machine: months of rows


def rule_choice(
    counts: MachineCounts, weights: np.ndarray, *, min_precision: float, max_false_alarms: float
) -> np.ndarray:
    """The rule's notch for each row of machine `weights` (resamples × machines)."""
    alerts, right = weights @ counts.alerts.T, weights @ counts.right.T
    months = np.broadcast_to((weights @ counts.months)[:, None], alerts.shape)
    precision = _ratio(right, alerts)
    in_budget = _ratio(alerts - right, months) <= max_false_alarms
    ok = (precision >= min_precision) & in_budget
    top = alerts.shape[1] - 1
    fallback = np.where(in_budget.any(axis=1), in_budget.argmax(axis=1), top)
    return np.where(ok.any(axis=1), ok.argmax(axis=1), fallback)


def steady_notch(
    counts: MachineCounts,
    *,
    min_precision: float,
    max_false_alarms: float,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> int:
    """The median over `resamples` machine bootstrap resamples of the rule's notch."""
    machines = counts.months.size
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(machines, np.full(machines, 1.0 / machines), size=resamples).astype(float)
    notches = rule_choice(counts, weights, min_precision=min_precision, max_false_alarms=max_false_alarms)
    return int(np.sort(notches)[(resamples - 1) // 2])


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (no alerts, no months: the rule reads those as 0)."""
    return np.divide(num, den, out=np.zeros(np.shape(num)), where=den > 0)


class Sweep:
    """A threshold sweep's judged alerts counted per training machine, notch by notch."""

    def __init__(
        self, seen: pd.Index, machines: np.ndarray, ts: pd.Series, truth: episodes.GroundTruth
    ) -> None:
        self._seen, self._truth = pd.Index(seen), truth
        sent = episodes.seconds_sent(machines, ts).reindex(self._seen)
        self._months = episodes.as_months(sent).to_numpy()
        self._alerts: list[np.ndarray] = []
        self._right: list[np.ndarray] = []

    def add(self, alerts: pd.DataFrame) -> None:
        """Count one notch's judged alerts (machine, start): per machine, all and right ones."""
        at = self._seen.get_indexer(alerts["machine"].astype(str).to_numpy())
        right = self._truth.right(alerts).astype(float)
        self._alerts.append(np.bincount(at, minlength=len(self._seen)).astype(float))
        self._right.append(np.bincount(at, weights=right, minlength=len(self._seen)))

    def counts(self) -> MachineCounts:
        """Every notch counted so far."""
        return MachineCounts(np.vstack(self._alerts), np.vstack(self._right), self._months)
