"""Training targets from ground truth: for every panel row, the time until the machine's next failure."""

from __future__ import annotations

import numpy as np
import pandas as pd

MODES_SEP = "+"  # joins the modes of parts that failed at the same time, e.g. "comp1+comp3"


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).dt.as_unit("ns")


def make_targets(
    panel: pd.DataFrame,
    failures: pd.DataFrame,
    maintenance: pd.DataFrame | None = None,
    *,
    no_faults: pd.DataFrame | None = None,
    visits: pd.DataFrame | None = None,
    until: pd.Timestamp | None = None,
    machine_col: str = "machine",
    time_col: str = "ts",
) -> pd.DataFrame:
    """Per row (same index as `panel`): hours to the next event, its mode, whether it had a precursor.

    Events are failures and, when `maintenance` is given, preventive visits that found a wear mode
    (`caught`: the degradation was real, a visit stopped it). Only events before `until` (default: the
    panel's end) count, so a model trained up to `until` never sees later ground truth; `censor_h` is the
    time from the row to `until` (a row with no event inside its horizon is a known negative only when
    the horizon ends before `until`). `modes` names every mode of the next event when parts of the
    machine failed at the same time (e.g. "comp1+comp3"), `mode` the first of them. `no_faults` are
    technicians' "no fault found" findings (machine, ts): `cleared_h` is the time from the row to the
    next one (up to `until` if given), which `within` reads. `visits` (machine, ts) are visits that
    recorded no finding (an alert resolved "other"): the visit may have repaired the machine unrecorded,
    so nothing is known past it, as past `until`: `censor_h` ends at the machine's next one.
    """
    ts = _utc(panel[time_col])
    end = pd.Timestamp(until).tz_convert("UTC") if until is not None else ts.max()
    events = failures[[machine_col, "ts", "mode", "has_precursor"]].rename(
        columns={"has_precursor": "precursor"}
    )
    events = events.assign(caught=False)
    if maintenance is not None and len(maintenance):
        found = maintenance[maintenance["found_mode"].notna()]
        caught = pd.DataFrame(
            {
                machine_col: found[machine_col].to_numpy(),
                "ts": found["ts"].to_numpy(),
                "mode": found["found_mode"].to_numpy(),
                "precursor": True,
                "caught": True,
            }
        )
        events = pd.concat([events, caught], ignore_index=True) if len(events) else caught
    events = events.assign(ts=_utc(events["ts"]), **{machine_col: events[machine_col].astype(str)})
    events = _simultaneous(events[events["ts"] <= end].rename(columns={"ts": "event_ts"}), machine_col)
    left = pd.DataFrame({machine_col: panel[machine_col].astype(str).to_numpy(), "t": ts.to_numpy()})
    left["pos"] = np.arange(len(panel))
    left = left.sort_values("t", kind="mergesort")
    merged = pd.merge_asof(
        left,
        events,
        left_on="t",
        right_on="event_ts",
        by=machine_col,
        direction="forward",
        allow_exact_matches=True,
    )
    merged = merged.set_index("pos").sort_index()
    hours = (merged["event_ts"] - merged["t"]).dt.total_seconds().to_numpy() / 3600.0
    # A finding made after the last row still clears the rows before it; only a backtest's `until` hides it.
    cleared = _hours_to_next(left, no_faults, machine_col=machine_col, end=None if until is None else end)
    censor = np.fmin(
        ((end - merged["t"]).dt.total_seconds() / 3600.0).to_numpy(),
        _hours_to_next(left, visits, machine_col=machine_col, end=end),
    )
    return pd.DataFrame(
        {
            "ttf_h": hours,
            "cleared_h": cleared,
            "mode": merged["mode"].to_numpy(dtype=object),
            "modes": merged["modes"].to_numpy(dtype=object),
            "precursor": merged["precursor"].fillna(False).astype(bool).to_numpy(),
            "caught": merged["caught"].fillna(False).astype(bool).to_numpy(),
            "censor_h": censor,
        },
        index=panel.index,
    )


def _simultaneous(events: pd.DataFrame, machine_col: str) -> pd.DataFrame:
    """One event per machine and time, sorted by time: two parts that fail at once are one event whose
    `modes` names both (sorted, joined by `MODES_SEP`); `mode` is the first of them."""
    events = events.assign(mode=events["mode"].astype(str))
    grouped = events.sort_values([machine_col, "event_ts", "mode"], kind="mergesort").groupby(
        [machine_col, "event_ts"], sort=False
    )
    out = grouped.agg(
        mode=("mode", "first"),
        modes=("mode", lambda m: MODES_SEP.join(sorted(set(m)))),
        precursor=("precursor", "any"),
        caught=("caught", "all"),
    ).reset_index()
    return out.sort_values("event_ts", kind="mergesort").reset_index(drop=True)


def split_modes(label: object) -> list[str]:
    """The failure modes a `modes` label names (one, or several that failed at once)."""
    return str(label).split(MODES_SEP)


def _hours_to_next(
    left: pd.DataFrame, marks: pd.DataFrame | None, *, machine_col: str, end: pd.Timestamp | None
) -> np.ndarray:
    """Per panel row (in `pos` order): hours to the machine's next mark, at or before `end` if given."""
    out = np.full(len(left), np.nan)
    if marks is None or not len(marks):
        return out
    right = pd.DataFrame(
        {machine_col: marks[machine_col].astype(str).to_numpy(), "mark_ts": _utc(marks["ts"]).to_numpy()}
    )
    if end is not None:
        right = right[right["mark_ts"] <= end.tz_convert("UTC")]
    right = right.sort_values("mark_ts")
    if not len(right):
        return out
    merged = pd.merge_asof(
        left, right, left_on="t", right_on="mark_ts", by=machine_col, direction="forward"
    ).set_index("pos")
    out[merged.index.to_numpy()] = (merged["mark_ts"] - merged["t"]).dt.total_seconds().to_numpy() / 3600.0
    return out


def within(y: pd.DataFrame, horizon_hours: float) -> tuple[np.ndarray, np.ndarray]:
    """Binary label (an event within the horizon) and whether that label is known (not censored).

    A row within the horizon before a "no fault found" finding is a known negative even where the end of
    the data or a visit without finding would censor it, unless an event within its horizon makes it
    positive: the finding is what a technician saw, a later failure is what happened.
    """
    ttf = y["ttf_h"].to_numpy(dtype=float)
    positive = ttf <= horizon_hours
    known = positive | (y["censor_h"].to_numpy(dtype=float) >= horizon_hours)
    if "cleared_h" in y:
        known |= y["cleared_h"].to_numpy(dtype=float) <= horizon_hours
    return positive, known


def unjudged(alerts: pd.DataFrame, visits: pd.DataFrame | None, horizon_hours: float) -> np.ndarray:
    """Per alert (machine, start): whether a visit without finding falls within its horizon, so that a
    failure-free horizon proves nothing (the visit may have repaired what the alert saw)."""
    if not len(alerts):
        return np.zeros(0, dtype=bool)
    machines, starts = alerts["machine"].astype(str).to_numpy(), _utc(alerts["start"]).to_numpy()
    left = pd.DataFrame({"machine": machines, "t": starts})
    left = left.assign(pos=np.arange(len(left))).sort_values("t", kind="mergesort")
    return _hours_to_next(left, visits, machine_col="machine", end=None) <= horizon_hours
