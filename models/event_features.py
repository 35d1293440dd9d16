"""Event features for any type that declares codes or components: per panel row, from the store.

Per declared code: events in the last `window_hours` and hours since the code was last raised; per
declared component: hours since it was last replaced, serviced or failed (the label store's history).
They ride in the panel as columns named `PREFIX…`, which `FleetFeatures` passes through unchanged, so
training and the scorer read them the same way.
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
    out: dict[str, list[str]] = {"count24": [], "since": [], "replaced": []}
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


def add(conn: Connection, panel: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """`panel` (machine = machine id) with the event `columns` added, from the store's events and labels."""
    if not columns or panel.empty:
        return panel
    wanted = _split(columns)
    ids = sorted({int(m) for m in pd.unique(panel["machine"])})
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
