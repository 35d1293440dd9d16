"""Alerts from risk series, and how they line up with ground-truth failures.

An alert starts at a machine's first row whose risk reaches the threshold; rows above the threshold
belong to the same alert until the risk stays below it for `reset_hours`. An alert is right when the
machine fails, or a maintenance visit finds a wear mode (`caught`), within the horizon after it starts.
A failure is detected with at least `min_lead_hours` when an alert started between `horizon` and
`min_lead_hours` before it; lead time = failure time - the earliest such alert start. An alert that is not
right but has a visit without finding within its horizon is unjudged (`models.labels.unjudged`): the visit
may have repaired what it saw, so it is counted apart, neither right nor false.

`RiskTable` and `GroundTruth` do the sorting and indexing once, so that a threshold search judges many
thresholds' alerts at the cost of a few array operations each; the functions below are their one-shot use.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models import labels

RESET_HOURS = 24.0  # the live policy opens a new alert after the same quiet time
_NO_EVENT = np.iinfo(np.int64).max


def _hours(span: np.ndarray) -> np.ndarray:
    """Hours of timedelta64 spans, rounded as pandas' `total_seconds()` rounds them."""
    return pd.TimedeltaIndex(span).total_seconds().to_numpy() / 3600.0


def _ns(values: pd.Series | np.ndarray) -> np.ndarray:
    """UTC times as datetime64[ns] values."""
    return pd.to_datetime(pd.Series(values), utc=True).dt.as_unit("ns").dt.tz_convert(None).to_numpy()


class RiskTable:
    """A risk table's rows (machine, time) sorted once: its alerts at any threshold without re-sorting."""

    def __init__(self, machines: np.ndarray, ts: pd.Series | np.ndarray) -> None:
        frame = pd.DataFrame(
            {"machine": np.asarray(machines).astype(str), "ts": pd.to_datetime(ts, utc=True)}
        )
        frame["pos"] = np.arange(len(frame))
        frame = frame.sort_values(["machine", "ts"], kind="mergesort")
        self._order = frame["pos"].to_numpy()
        self._rows = frame[["machine", "ts"]].rename(columns={"ts": "start"})
        self._times = frame["ts"].dt.tz_convert(None).to_numpy()
        machine = frame["machine"].to_numpy()
        self._machine = np.cumsum(np.r_[True, machine[1:] != machine[:-1]][: len(machine)])

    def alerts(self, risk: np.ndarray, threshold: float, *, reset_hours: float = RESET_HOURS) -> pd.DataFrame:
        """One row per alert at `threshold`: machine and start time."""
        above = np.nan_to_num(np.asarray(risk, dtype=float), nan=-1.0)
        if len(above) != len(self._order):
            raise ValueError(f"{len(above)} risks for {len(self._order)} rows")
        kept = np.flatnonzero(above[self._order] >= threshold)
        machine = self._machine[kept]
        gap = _hours(np.diff(self._times[kept]))
        new = np.r_[True, (machine[1:] != machine[:-1]) | np.isnan(gap) | (gap > reset_hours)]
        return self._rows.iloc[kept[new[: len(kept)]]].reset_index(drop=True)


class _Events:
    """Event times grouped by machine (codes of a shared vocabulary), each machine's sorted slice."""

    def __init__(self, codes: np.ndarray, times: np.ndarray, machines: int) -> None:
        order = np.lexsort((times, codes))
        self.times = times[order]
        self.bounds = np.searchsorted(codes[order], np.arange(machines + 1))

    def pairs(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(i, j): each row i of `codes` with each event j (sorted position) of its machine."""
        known = codes >= 0
        lo, count = np.zeros(len(codes), np.int64), np.zeros(len(codes), np.int64)
        lo[known] = self.bounds[codes[known]]
        count[known] = self.bounds[codes[known] + 1] - lo[known]
        i = np.repeat(np.arange(len(codes)), count)
        j = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + np.repeat(lo, count)
        return i, j

    def followed(self, codes: np.ndarray, starts: np.ndarray, horizon_hours: float) -> np.ndarray:
        """True for starts whose machine's next event (at or after the start) comes within the horizon."""
        i, j = self.pairs(codes)
        span = (self.times[j] - starts[i]).astype(np.int64)
        ahead = span >= 0
        nearest = np.full(len(codes), _NO_EVENT)
        np.minimum.at(nearest, i[ahead], span[ahead])
        hit = nearest != _NO_EVENT
        hit[hit] = _hours(nearest[hit].astype("timedelta64[ns]")) <= horizon_hours
        return hit


def _events(failures: pd.DataFrame, maintenance: pd.DataFrame | None) -> pd.DataFrame:
    """Failures, then visits that found wear, as (machine, event_ts)."""
    parts = [pd.DataFrame({"machine": failures["machine"].astype(str), "event_ts": failures["ts"]})]
    if maintenance is not None and len(maintenance):
        found = maintenance[maintenance["found_mode"].notna()]
        parts.append(pd.DataFrame({"machine": found["machine"].astype(str), "event_ts": found["ts"]}))
    return pd.concat(parts, ignore_index=True)


class GroundTruth:
    """Failures and wear-finding visits indexed once by machine: judges alerts at any threshold."""

    def __init__(
        self, failures: pd.DataFrame, maintenance: pd.DataFrame | None, *, horizon_hours: float
    ) -> None:
        self.horizon_hours = horizon_hours
        events = _events(failures, maintenance)
        self._vocabulary = pd.Index(pd.unique(events["machine"].to_numpy()))
        codes = self._codes(events["machine"])
        times = _ns(events["event_ts"])
        n, k = len(failures), len(self._vocabulary)
        self._caught = _Events(codes, times, k)  # failures and wear found
        self._failed = _Events(codes[:n], times[:n], k)
        self._failure_codes, self._failure_times = codes[:n], times[:n]
        self._precursor = failures["has_precursor"].astype(bool).to_numpy() if n else np.zeros(0, bool)

    def _codes(self, machines: pd.Series) -> np.ndarray:
        return self._vocabulary.get_indexer(machines.astype(str).to_numpy())

    def right(self, alerts: pd.DataFrame) -> np.ndarray:
        """Per alert (machine, start): whether its machine fails, or wear is found, within the horizon."""
        return self._caught.followed(self._codes(alerts["machine"]), _ns(alerts["start"]), self.horizon_hours)

    def unjudged(self, alerts: pd.DataFrame, visits: pd.DataFrame | None) -> np.ndarray:
        """Per alert: not right, but a visit without finding falls within its horizon (`labels.unjudged`)."""
        if visits is None or not len(visits) or not len(alerts):
            return np.zeros(len(alerts), dtype=bool)
        return labels.unjudged(alerts, visits, self.horizon_hours) & ~self.right(alerts)

    def _lead_times(self, codes: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Per failure: hours between the earliest alert in its horizon and the failure (NaN if none)."""
        by_machine = _Events(codes, starts, len(self._vocabulary))
        i, j = by_machine.pairs(self._failure_codes)
        hours = _hours(self._failure_times[i] - by_machine.times[j])
        ok = (hours > 0) & (hours <= self.horizon_hours)
        lead = np.full(len(self._failure_codes), np.nan)
        np.fmax.at(lead, i[ok], hours[ok])
        return lead

    def metrics(
        self,
        alerts: pd.DataFrame,
        *,
        machine_months: float,
        min_lead_hours: float = 24.0,
        end: pd.Timestamp | None = None,
        visits: pd.DataFrame | None = None,
    ) -> dict:
        """`alert_metrics` of these alerts."""
        left_out = self.unjudged(alerts, visits)
        alerts = alerts[~left_out]
        codes, starts = self._codes(alerts["machine"]), _ns(alerts["start"])
        right = self._caught.followed(codes, starts, self.horizon_hours)
        strict = self._failed.followed(codes, starts, self.horizon_hours)
        n = len(alerts)
        out = {
            "alerts": n,
            "true_alerts": int(right.sum()),
            "precision": float(right.mean()) if n else None,
            "precision_failures_only": float(strict.mean()) if n else None,
            "false_alarms": int(n - right.sum()),
            "false_alarms_per_machine_month": float((n - right.sum()) / machine_months)
            if machine_months
            else None,
        }
        if visits is not None:
            out["unjudged_alerts"] = int(left_out.sum())
        if end is not None:
            start = pd.to_datetime(alerts["start"], utc=True).dt.as_unit("ns")
            judged = (start + pd.Timedelta(hours=self.horizon_hours) <= end).to_numpy()
            out["judged_alerts"] = int(judged.sum())
            out["precision_judged"] = float(right[judged].mean()) if judged.any() else None
        leads = self._lead_times(codes, starts)
        for kind, mask in (("precursor", self._precursor), ("sudden", ~self._precursor)):
            lead = leads[mask]
            ok = lead >= min_lead_hours
            out[kind] = {
                "failures": int(len(lead)),
                "detected": int(np.sum(~np.isnan(lead))),
                "detected_min_lead": int(ok.sum()),
                "recall_min_lead": float(ok.mean()) if len(lead) else None,
                "recall_any_lead": float(np.mean(~np.isnan(lead))) if len(lead) else None,
                "median_lead_hours": float(np.nanmedian(lead)) if np.any(~np.isnan(lead)) else None,
            }
        return out


def alert_starts(
    machines: np.ndarray,
    ts: pd.Series | np.ndarray,
    risk: np.ndarray,
    threshold: float,
    *,
    reset_hours: float = RESET_HOURS,
) -> pd.DataFrame:
    """One row per alert: machine and start time."""
    return RiskTable(machines, ts).alerts(risk, threshold, reset_hours=reset_hours)


def right_alerts(
    alerts: pd.DataFrame, failures: pd.DataFrame, maintenance: pd.DataFrame | None, *, horizon_hours: float
) -> np.ndarray:
    """Per alert (machine, start): whether its machine fails, or wear is found, within the horizon."""
    return GroundTruth(failures, maintenance, horizon_hours=horizon_hours).right(alerts)


def machine_months(machines: np.ndarray, ts: pd.Series | np.ndarray) -> float:
    """Months of rows summed over machines, each from its first row to its last: a fleet that grew, or
    machines that fell silent, count the time their machines sent, not the whole fleet's span."""
    return float(as_months(seconds_sent(machines, ts).sum()))


def as_months(seconds: float | pd.Series) -> float | pd.Series:
    """Seconds as months of 30 days."""
    return seconds / 86400.0 / 30.0


def seconds_sent(machines: np.ndarray, ts: pd.Series | np.ndarray) -> pd.Series:
    """Per machine, the seconds from its first row to its last (`machine_months` sums them)."""
    frame = pd.DataFrame({"machine": np.asarray(machines), "ts": pd.to_datetime(ts, utc=True)})
    span = frame.groupby("machine", sort=False)["ts"].agg(["min", "max"])
    return (span["max"] - span["min"]).dt.total_seconds()


def alert_metrics(
    alerts: pd.DataFrame,
    failures: pd.DataFrame,
    maintenance: pd.DataFrame | None,
    *,
    horizon_hours: float,
    machine_months: float,
    min_lead_hours: float = 24.0,
    end: pd.Timestamp | None = None,
    visits: pd.DataFrame | None = None,
) -> dict:
    """Precision, false alarms per machine-month, recall at the minimum lead and median lead, per kind.

    With `end` (the last time the ground truth covers), also `precision_judged`: the precision of the
    alerts whose horizon ends by `end` (`judged_alerts`); a later one is counted false without a failure
    but cannot be judged, the machine may fail after `end`. With `visits` (machine, ts: visits without
    finding), the alerts `GroundTruth.unjudged` names are left out of every figure and counted in
    `unjudged_alerts`.
    """
    truth = GroundTruth(failures, maintenance, horizon_hours=horizon_hours)
    return truth.metrics(
        alerts, machine_months=machine_months, min_lead_hours=min_lead_hours, end=end, visits=visits
    )
