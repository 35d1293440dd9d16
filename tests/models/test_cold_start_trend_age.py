"""A cold-start trend explanation names the reading its forecast starts from as it stands: one older than the
limit check holds a reading for is said with its age, never as the machine's reading now."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from fleet import machine_types, registry, telemetry
from models import champion, scoring, versions
from models.cold_start import ColdStartModel
from tests.models.test_cold_start_limits import latest_of
from tests.models.test_cold_start_trend import HEALTHY, ONSET, START, presses

TYPES = (
    "machine_types:\n  - name: press\n    sensors:\n"
    "      - {name: temp_c, unit: °C, display_name: temperature}\n"
    "      - {name: vib, unit: mm/s, display_name: vibration}\n"
)
NOW = ONSET + pd.Timedelta(hours=44)  # 20:00 on the second day of the climb: its trend alerts
# The press's last messages carry the vibration alone (its temperature sensor dropped out): one message is
# within the hold of an hourly type (90 min), three are not; the words each gives.
SAID = {
    1: r"temperature \d+\.\d+ °C, forecast to cross its limit in \d+ h",
    3: r"temperature last read 3 h ago: 71\.84 °C, forecast to cross its limit in \d+ h",
}


def _store_hot_press(engine: Engine, model: ColdStartModel, quiet: int) -> int:
    """The climbing press's rows of the scorer's window up to `NOW`, the last `quiet` without temperature."""
    panel = presses()
    history = pd.Timedelta(hours=scoring.history_hours(model))
    rows = panel[(panel["machine"] == HEALTHY) & (panel["ts"] > NOW - history) & (panel["ts"] <= NOW)]
    registry.add_customer(engine=engine, tenant="acme", product_improvement=True)
    press = registry.add_machine(engine=engine, tenant="acme", code="press-11", machine_type="press")
    gone = np.arange(len(rows)) >= len(rows) - quiet
    stored = [
        {
            "customer_id": press.customer_id,
            "machine_id": press.id,
            "seq": int(row.seq),
            "ts": row.ts.to_pydatetime(),
            "readings": {"vib": float(row.vib)} | ({} if lost else {"temp_c": float(row.temp_c)}),
            "received_at": datetime.now(UTC),
        }
        for row, lost in zip(rows.itertuples(index=False), gone, strict=True)
    ]
    with engine.begin() as conn:
        telemetry.insert_telemetry(conn, stored)
    return press.id


@pytest.mark.parametrize("quiet", SAID)
def test_a_trend_named_by_a_reading_older_than_the_hold_says_when_it_was_read(
    sqlite_engine, tmp_path, quiet: int
) -> None:
    (tmp_path / "types.yaml").write_text(TYPES, encoding="utf-8")
    machine_types.apply_file(engine=sqlite_engine, path=tmp_path / "types.yaml")
    panel = presses()
    model = ColdStartModel(limits={}).fit(panel[(panel["ts"] < START) & (panel["machine"] < HEALTHY)])
    versions.register(sqlite_engine, model=model, machine_type="press", kind=champion.COLD_START_KIND)
    press = _store_hot_press(sqlite_engine, model, quiet)

    scoring.score_once(engine=sqlite_engine)

    _, _, why = latest_of(sqlite_engine, press)
    # Three messages quiet, it said "temperature 71.84 °C, forecast …": 17:00's reading as the press's now.
    assert re.fullmatch(f"no failure history yet: {SAID[quiet]}", why), why
