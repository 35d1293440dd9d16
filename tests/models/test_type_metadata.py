"""Explanations and the trend-to-limit take words and limits from the machine type (OEM beats learned)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from fleet import machine_types
from models import explain, limits, versions
from simulators.machine_types import TYPES_FILE
from tests.models.fleet_support import PUMP, pump_model, pump_panel

VIBRATION, PRESSURE = "vibration_rms_mm_s", "discharge_pressure_bar"


def _series(model, values: dict[str, np.ndarray], steps: int) -> np.ndarray:  # noqa: ANN001
    """sensors × 1 machine × steps, NaN for the sensors not given."""
    sensors = model.trend_.features_.sensors_
    out = np.full((len(sensors), 1, steps), np.nan)
    for name, v in values.items():
        out[sensors.index(name), 0] = v
    return out


def test_an_oem_limit_beats_the_learned_limit_in_the_sensors_unit_and_direction() -> None:
    model = pump_model()
    trend, steps = model.trend_, 48
    flat_dev = _series(model, {VIBRATION: np.zeros(steps), PRESSURE: np.zeros(steps)}, steps)
    machines = np.array(["pump-1"])
    learned = trend.predict_series(machines, flat_dev)
    assert np.isnan(learned["eta_h"].iloc[0])  # no deviation: the learned limits are never reached

    above_alarm = _series(model, {VIBRATION: np.full(steps, 7.5)}, steps)
    oem = {VIBRATION: (7.1, "high")}
    at_once = trend.predict_series(machines, flat_dev, raw=above_alarm, oem_limits=oem)
    assert at_once["eta_h"].iloc[0] == 0.0 and at_once["eta_sensor"].iloc[0] == VIBRATION

    rising = _series(model, {VIBRATION: np.linspace(2.0, 6.0, steps)}, steps)
    ahead = trend.predict_series(machines, flat_dev, raw=rising, oem_limits=oem)
    step_h = trend.features_.step_hours_
    assert ahead["eta_sensor"].iloc[0] == VIBRATION and 0 < ahead["eta_h"].iloc[0] < trend.max_hours
    # the same rise with a limit twice as far away takes longer to reach
    further = trend.predict_series(machines, flat_dev, raw=rising, oem_limits={VIBRATION: (12.0, "high")})
    assert further["eta_h"].iloc[0] > ahead["eta_h"].iloc[0] + step_h

    low_pressure = _series(model, {PRESSURE: np.full(steps, 3.0)}, steps)
    assert (
        trend.predict_series(machines, flat_dev, raw=low_pressure, oem_limits={PRESSURE: (4.0, "low")})[
            "eta_h"
        ].iloc[0]
        == 0.0
    )
    # the same limit with high readings as the bad side is not reached from below
    assert np.isnan(
        trend.predict_series(machines, flat_dev, raw=low_pressure, oem_limits={PRESSURE: (4.0, "high")})[
            "eta_h"
        ].iloc[0]
    )


def test_explanations_use_the_display_name_or_spell_the_sensor_out() -> None:
    assert explain.describe(VIBRATION, 0.4, 0.12, 0.31, "Lagerschwingung").startswith(
        "Lagerschwingung rose 40 %"
    )
    assert explain.describe("oil_temp_c", -0.2, 0.0, 0.1).startswith("oil temp c fell 20 %")


def test_a_loaded_model_explains_and_forecasts_with_its_stored_type(engine, tmp_path: Path) -> None:
    model = pump_model()
    version = versions.register(engine, model=model, machine_type=PUMP)
    panel = pump_panel()
    machine_types.apply_file(engine=engine, path=TYPES_FILE)
    stock = versions.load(engine, version).predict_frame(panel)
    assert stock["explanation"].str.contains("vibration|bearing temperature|flow|motor current").any()

    # a new version of the type: other words, and an OEM alarm limit every bearing reading is above
    data = yaml.safe_load(TYPES_FILE.read_text(encoding="utf-8"))
    pump = next(t for t in data["machine_types"] if t["name"] == PUMP)
    for s in pump["sensors"]:
        s["display_name"] = f"Sensor {s['name'].upper()}"
        if s["name"] == "bearing_temp_c":
            s.update(warning=-35.0, alarm=-30.0, bad="high")  # inside its range [-40, 200]
    changed = tmp_path / "types.yaml"
    changed.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert machine_types.apply_file(engine=engine, path=changed)[0] == machine_types.Applied(PUMP, 2, True)

    scored = versions.load(engine, version).predict_frame(panel)
    ok = scored["contributions"].notna()  # the model's rows (without the history: the alarm limit alone)
    assert (scored["status"] == "ok").all() and (scored["risk"] == limits.ALARM_RISK).all()
    assert ok.any()
    texts = [c["text"] for row in scored.loc[ok, "contributions"] for c in row]
    assert all(t.startswith("Sensor ") for t in texts)
    assert (scored.loc[ok, "eta_sensor"] == "bearing_temp_c").all()
    assert (scored.loc[ok, "eta_h"] == 0.0).all()
    assert not (stock.loc[ok, "eta_h"] == 0.0).all()  # the learned limits said otherwise
