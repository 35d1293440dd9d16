"""Event features for any type that declares codes or components: per panel row, from the store.

Per declared code: events in the last `window_hours` and hours since the code was last raised; per
declared component: hours since it was last replaced, serviced or failed (the label store's history);
and the machine's memory of technicians' "no fault found" findings (`NO_FAULT_COLUMNS`). They ride in
the panel as columns named `PREFIX…`, which `FleetFeatures` passes through unchanged, so training
and the scorer read them the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select

from fleet import labels
from fleet.tables import MachineEvent, MachineTypeVersion

PREFIX = "ev:"
WINDOW_HOURS = 24.0
SINCE_CAP_HOURS = 720.0  # "not in the last 30 days" reads the same for any older code
VISITS = ("failure", "replacement", "maintenance")
NO_FAULT_COLUMNS = [f"{PREFIX}no_fault:count", f"{PREFIX}no_fault:since"]
NO_FAULT_HOURS = 1440.0  # a finding is remembered 60 days: a test window after a 90-day training one


def columns_for(definition: dict) -> list[str]:
    """The event columns of a machine type's definition (its declared codes and components)."""
    codes = [str(c["code"]) for c in definition.get("codes") or []]
    comps = [str(c["name"]) for c in definition.get("components") or []]
    return (
        [f"{PREFIX}count24:{c}" for c in codes]
        + [f"{PREFIX}since:{c}" for c in codes]
        + [f"{PREFIX}replaced:{c}" for c in comps]
    )


def _split(columns: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"count24": [], "since": [], "replaced": [], "no_fault": []}
    for col in columns:
        kind, _, name = col.removeprefix(PREFIX).partition(":")
        out[kind].append(name)
    return out


def _hours_since(t: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """Per time in `t` (ns): hours since the newest mark at or before it (NaN when none); marks sorted."""
    pos = np.searchsorted(marks, t, side="right") - 1
    out = np.full(len(t), np.nan)
    ok = pos >= 0
    out[ok] = (t[ok] - marks[pos[ok]]) / 3.6e12
    return out


def _count_within(t: np.ndarray, marks: np.ndarray, hours: float) -> np.ndarray:
    """Per time in `t` (ns): marks in (t - hours, t]; marks sorted."""
    return (
        np.searchsorted(marks, t, side="right")
        - np.searchsorted(marks, t - int(hours * 3.6e12), side="right")
    ).astype(float)


def _ns(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values, utc=True).dt.as_unit("ns").array.asi8


def no_fault_memory(panel: pd.DataFrame, no_faults: pd.DataFrame) -> pd.DataFrame:
    """`panel` with `NO_FAULT_COLUMNS`: per row, the machine's "no fault found" findings in the last
    `NO_FAULT_HOURS` and hours since the newest (capped there), counting findings at or before the row.

    A machine whose normal reads abnormal to the fleet model is cleared again and again; the memory lets
    the model learn that such a machine's alerting rows are its normal (machines match as text).
    """
    t_all = _ns(panel["ts"])
    count, since = np.zeros(len(panel)), np.full(len(panel), NO_FAULT_HOURS)
    machine = panel["machine"].astype(str).to_numpy()
    marks_of = pd.Series(_ns(no_faults["ts"]) if len(no_faults) else [], dtype=np.int64).groupby(
        no_faults["machine"].astype(str).to_numpy() if len(no_faults) else []
    )
    for m, marks in marks_of:
        rows_m = np.flatnonzero(machine == m)
        marks = np.sort(marks.to_numpy(dtype=np.int64))
        count[rows_m] = _count_within(t_all[rows_m], marks, NO_FAULT_HOURS)
        since[rows_m] = np.fmin(np.nan_to_num(_hours_since(t_all[rows_m], marks), nan=np.inf), NO_FAULT_HOURS)
    return panel.assign(**dict(zip(NO_FAULT_COLUMNS, (count, since), strict=True)))


def add(conn: Connection, panel: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """`panel` (machine = machine id) with the event `columns` added, from the store's events and labels."""
    if not columns or panel.empty:
        return panel
    wanted = _split(columns)
    ids = sorted({int(m) for m in pd.unique(panel["machine"])})
    if wanted["no_fault"]:
        found = labels.read(conn, machine_ids=ids, kinds=("no_fault",))
        panel = no_fault_memory(panel, found.assign(machine=found["machine_id"]))
        columns = [c for c in columns if c not in NO_FAULT_COLUMNS]
        if not columns:
            return panel
    t_all = _ns(panel["ts"])
    start = pd.Timestamp(t_all.min(), tz="UTC") - timedelta(hours=SINCE_CAP_HOURS)
    end = pd.Timestamp(t_all.max(), tz="UTC")
    e = MachineEvent
    rows = conn.execute(
        select(e.machine_id, e.ts, e.code).where(
            e.machine_id.in_(ids), e.ts >= start.to_pydatetime(), e.ts <= end.to_pydatetime()
        )
    ).all()
    events = pd.DataFrame(rows, columns=["machine", "ts", "code"])
    events["t"] = _ns(events["ts"]) if len(events) else np.zeros(0, dtype=np.int64)
    visits = labels.read(conn, machine_ids=ids, kinds=VISITS)
    visits = visits.assign(machine=visits["machine_id"], t=_ns(visits["ts"]) if len(visits) else 0)
    out = {c: np.full(len(panel), np.nan) for c in columns}
    machine = panel["machine"].astype(np.int64).to_numpy()
    for m in ids:
        rows_m = np.flatnonzero(machine == m)
        t = t_all[rows_m]
        ev = events[events["machine"] == m]
        for code in set(wanted["count24"]) | set(wanted["since"]):
            marks = np.sort(ev.loc[ev["code"] == code, "t"].to_numpy(dtype=np.int64))
            if code in wanted["count24"]:
                out[f"{PREFIX}count24:{code}"][rows_m] = _count_within(t, marks, WINDOW_HOURS)
            if code in wanted["since"]:
                since = _hours_since(t, marks)
                out[f"{PREFIX}since:{code}"][rows_m] = np.fmin(since, SINCE_CAP_HOURS)
        vm = visits[visits["machine"] == m]
        for comp in wanted["replaced"]:
            marks = np.sort(vm.loc[vm["component"] == comp, "t"].to_numpy(dtype=np.int64))
            out[f"{PREFIX}replaced:{comp}"][rows_m] = _hours_since(t, marks)
    return panel.assign(**out)


def columns_of_type(conn: Connection, machine_type: str) -> list[str]:
    """The event columns the newest definition of `machine_type` declares ([] for an unknown type)."""
    query = (
        select(MachineTypeVersion.definition)
        .where(MachineTypeVersion.name == machine_type)
        .order_by(MachineTypeVersion.version.desc())
        .limit(1)
    )
    definition = conn.execute(query).scalar()
    return columns_for(definition) if definition else []
