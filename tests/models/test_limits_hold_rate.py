"""A limit reading stands for as long as its machine's own silence between messages, not only its type's step:
a pump that reports every two hours holds an alarm through a message without the reading, as its hourly
twin does, in the store's live scoring and in the backtest alike."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sqlalchemy import select

from fleet import contract, machine_types, registration
from fleet.tables import Prediction
from ingest.pipeline import Pipeline
from models import limits, scoring, training, versions
from simulators.machine_types import TYPES_FILE
from tests.models.fleet_support import PUMP, pump_model, pump_panel

SENSOR = "vibration_rms_mm_s"
TWINS = {"hourly": 1, "two-hourly": 2}  # machine: hours between its messages (the type's step is 1 h)


def _history(every: int) -> pd.DataFrame:
    """A simulated pump's rows every `every` hours, its vibration at 9 mm/s (the alarm limit is 7.1) in its
    three messages before the latest, which lacks the reading (the sensor dropped it once)."""
    rows = pump_panel()
    rows = rows[rows["machine"] == rows["machine"].iloc[0]].iloc[::-1][::every].iloc[::-1].copy()
    rows.iloc[-4:-1, rows.columns.get_loc(SENSOR)] = 9.0
    rows.iloc[-1, rows.columns.get_loc(SENSOR)] = np.nan
    return rows.reset_index(drop=True)


def _messages(machine: str, rows: pd.DataFrame) -> list[tuple[str, bytes, float]]:
    """The rows as the machine's v1 messages, each with the readings it has."""
    sensors = pump_model().sensors_read()
    topic = contract.telemetry_topic("acme", machine)
    out = []
    for seq, row in enumerate(rows.itertuples(index=False), start=1):
        readings = {s: float(getattr(row, s)) for s in sensors if np.isfinite(getattr(row, s))}
        payload = contract.encode_payload(seq, row.ts.to_pydatetime(), readings, state=row.state)
        out.append((topic, payload, time.time()))
    return out


def test_a_pump_slower_than_its_type_holds_its_alarm_through_a_message_without_the_reading(engine) -> None:
    machine_types.apply_file(engine=engine, path=TYPES_FILE)
    ids = registration.register_machines(
        engine=engine, machines=[{"tenant": "acme", "machine": m, "machine_type": PUMP} for m in TWINS]
    )
    Pipeline(engine=engine).store([m for name, h in TWINS.items() for m in _messages(name, _history(h))])
    version = versions.register(engine, model=pump_model(), machine_type=PUMP)

    scoring.score_once(engine=engine)

    names = {machine_id: name for (_, name), (_, machine_id) in ids.items()}
    with engine.connect() as conn:
        found = conn.execute(select(Prediction.machine_id, Prediction.risk, Prediction.explanation)).all()
    live = {names[m]: (risk, said) for m, risk, said in found}
    for name, hours in TWINS.items():
        risk, said = live[name]
        assert risk == limits.ALARM_RISK, (name, said)
        said_first = f"vibration 9 mm/s, beyond the OEM alarm limit 7.1 mm/s for {2 * hours} h; "
        assert said.startswith(said_first), said
    # The backtest of the stored rows says the same at each machine's latest row.
    panel = training.read_type_panel(engine, sorted(names), machine_type=PUMP)
    risk, _ = versions.load(engine, version).risk_rows(panel)
    latest = panel.sort_values("ts", kind="mergesort").groupby("machine").tail(1)
    assert dict(zip(latest["machine"].map(names), risk[latest.index], strict=True)) == {
        name: limits.ALARM_RISK for name in TWINS
    }


def test_the_usual_interval_is_the_last_days_so_the_scorers_window_holds_as_the_full_history() -> None:
    """A pump sending every 2 h for days, then every 8 h for the last day: its latest message, without the
    vibration read 8 h before, carries that reading (its interval now), read over its whole history as
    over the scorer's window, which holds fewer of the old 2 h intervals."""
    end = pd.Timestamp("2026-12-05", tz="UTC")
    ts = [end - pd.Timedelta(hours=h) for h in [*range(24 + 2 * 40, 24, -2), 24, 16, 8, 0]]
    vibration = [3.0] * (len(ts) - 3) + [9.0, 9.0, np.nan]
    full = pd.DataFrame({"machine": "slow", "ts": ts, SENSOR: vibration})
    found = {SENSOR: {"warning": None, "alarm": 7.1, "bad": "high", "on_delay_s": 60.0}}
    window = full[full["ts"] >= end - pd.Timedelta(hours=scoring.history_hours(pump_model()))]
    window = window.reset_index(drop=True)
    hold_s = limits.hold_seconds(pump_model().features_.step_hours_)

    seen = [limits.beyond(rows, found, hold_s=hold_s)[0][-1] for rows in (full, window)]

    assert seen == [limits.ALARM_RISK, limits.ALARM_RISK]
