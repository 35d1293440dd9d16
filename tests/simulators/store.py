"""Helpers for simulator tests that read the telemetry store back."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, select

from fleet import machine_types
from fleet.tables import Machine, Telemetry
from simulators.machine_types import SENSOR_COLUMNS


def stored_telemetry(engine: Engine) -> dict[tuple[str, int], tuple]:
    """(machine, seq) → (ts, readings, extra) of every stored row."""
    query = select(Machine.code, Telemetry.seq, Telemetry.ts, Telemetry.readings, Telemetry.extra).join(
        Machine, Telemetry.machine_id == Machine.id
    )
    with engine.connect() as conn:
        return {(code, seq): (ts, readings, extra) for code, seq, ts, readings, extra in conn.execute(query)}


def expected_telemetry(panel: pd.DataFrame) -> dict[tuple[str, int], tuple]:
    """What the store should hold for a panel: the same mapping as `stored_telemetry`."""
    values = panel[list(SENSOR_COLUMNS)].to_numpy()
    out = {}
    for machine, seq, ts, state, row in zip(
        panel["machine"].astype(str),
        panel["seq"],
        panel["ts"],
        panel["state"].astype(str),
        values.tolist(),
        strict=True,
    ):
        readings = {name: v for name, v in zip(SENSOR_COLUMNS, row, strict=True) if not math.isnan(v)}
        extra = None if state == "running" else {"state": state}
        out[(machine, int(seq))] = (ts.to_pydatetime(), readings, extra)
    return out


def readings_in(panel: pd.DataFrame) -> int:
    """Sensor values in a panel."""
    return int(np.isfinite(panel[list(SENSOR_COLUMNS)].to_numpy()).sum())


def declared_parts(conn: Connection, stored: pd.DataFrame) -> list[str | None]:
    """Per label, the component its machine's type says the label's mode belongs to."""
    declared = machine_types.declared_for(conn, stored["machine_id"].astype(int).tolist())
    return [
        declared[int(m)][1].component_of(mode)
        for m, mode in zip(stored["machine_id"], stored["mode"], strict=True)
    ]
