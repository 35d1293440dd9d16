"""A types file's `simulation:` block is checked like the rest of it: each problem with its line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleet import type_files
from servicecast.cli import app
from simulators import machine_types as simulated_types
from simulators.machine_types import TYPES_FILE

PUMP = "machine_types[0].simulation"
WEAR = f"{PUMP}.modes.bearing_wear"
E0, E1 = f"{WEAR}.effects[0]", f"{WEAR}.effects[1]"
SHIPPED = TYPES_FILE.read_text(encoding="utf-8")

CASES = [
    (
        "noise_sd: 1.2,",
        "noise_sd: true,",
        f"50: {PUMP}.sensors.flow_m3h.noise_sd: True is not a finite number",
    ),
    (
        "noise_sd: 0.05,",
        'noise_sd: "3",',
        f"51: {PUMP}.sensors.discharge_pressure_bar.noise_sd: '3' is not a",
    ),
    (
        "noise_sd: 0.6,",
        "noise_sd: -0.6,",
        f"52: {PUMP}.sensors.motor_current_a.noise_sd: -0.6 must be 0 or more",
    ),
    (
        "decimals: 2, scale: 150.0",
        "decimals: 2.5, scale: 150.0",
        f"50: {PUMP}.sensors.flow_m3h.decimals: 2.5",
    ),
    ("scale: 150.0", "scale: 0", f"50: {PUMP}.sensors.flow_m3h.scale: 0 must be above 0"),
    ("rate_per_day: 0.45", "rate_per_day: .inf", f"58: {PUMP}.modes.bearing_wear.rate_per_day: inf is not"),
    (
        "threshold: 20.0\n          effects: [[vib",
        "threshold: -1\n          effects: [[vib",
        f"59: {WEAR}.threshold: -1 must be above 0",
    ),
    (
        "[bearing_temp_c, add, 22.0]",
        "[bearing_temp_c, pow, 22.0]",
        f"60: {E1}[1]: 'pow' must be one of mul, add",
    ),
    (
        "[bearing_temp_c, add, 22.0]",
        "[bearing_tmp_c, add, 22.0]",
        f"60: {E1}[0]: 'bearing_tmp_c' is not one of",
    ),
    (
        "[vibration_rms_mm_s, mul, 3.5]",
        "[vibration_rms_mm_s, mul, -1.5]",
        f"60: {E0}[2]: -1.5 must be -1 or more",
    ),
    ("sudden_mode: coupling_failure", "sudden_mode: coupling", f"48: {PUMP}.sudden_mode: 'coupling' is not"),
    ("        seal_leak:\n", "        seal_lek:\n", f"61: {PUMP}.modes.seal_lek: 'seal_lek' is not one of"),
    (", range: [0.0, 600.0]}", "}", "10: machine_types[0].sensors[0].range: is required to simulate it"),
    (
        "        flow_m3h: {noise_sd: 1.2, decimals: 2, scale: 150.0}\n",
        "",
        f"49: {PUMP}.sensors.flow_m3h: is req",
    ),
]


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    assert SHIPPED.count(old) >= 1
    path = tmp_path / "fleet_types.yaml"
    path.write_text(SHIPPED.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(("old", "new", "expected"), CASES, ids=[c[1].strip()[:30] for c in CASES])
def test_a_wrong_simulation_value_is_refused_with_its_line_and_field(tmp_path, old, new, expected) -> None:
    path = _broken(tmp_path, old, new)
    with pytest.raises(type_files.TypesFileError) as refused:
        simulated_types.load(path)  # the simulator reads it
    assert f"{path}:{expected}" in str(refused.value)
    with pytest.raises(type_files.TypesFileError) as applied:
        type_files.read(path)  # and `types apply` checks it the same way
    assert str(applied.value) == str(refused.value)


def test_the_shipped_types_file_loads_with_the_values_it_writes() -> None:
    pump = simulated_types.load()["centrifugal_pump"]
    flow = pump.sensors[0]
    assert (flow.name, flow.noise_sd, flow.decimals, flow.scale) == ("flow_m3h", 1.2, 2, 150.0)
    assert isinstance(flow.decimals, int) and isinstance(flow.noise_sd, float)
    assert pump.mode("bearing_wear").effects[0] == simulated_types.Effect("vibration_rms_mm_s", "mul", 3.5)
    assert pump.sudden_mode == "coupling_failure"


def test_a_type_without_a_simulation_block_is_applied_but_not_simulated(tmp_path) -> None:
    cut = SHIPPED.index("    simulation:\n      prefix: pump")
    path = tmp_path / "fleet_types.yaml"
    path.write_text(SHIPPED[:cut] + SHIPPED[SHIPPED.index("\n  - name: air_compressor") :], encoding="utf-8")
    assert "centrifugal_pump" in type_files.read(path).definitions
    with pytest.raises(type_files.TypesFileError) as refused:
        simulated_types.load(path)
    assert str(refused.value) == f"{path}: machine_types[0].simulation: is required by the simulator"


def test_types_apply_refuses_a_wrong_simulation_block_by_line_without_a_traceback(
    monkeypatch, tmp_path, engine, database_url
) -> None:
    path = _broken(tmp_path, "noise_sd: 1.2,", "noise_sd: yes,")
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    result = CliRunner().invoke(app, ["types", "apply", str(path)])
    assert result.exit_code == 1, result.output
    assert f"{path}:50: {PUMP}.sensors.flow_m3h.noise_sd: True is not a finite number" in result.stderr
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
