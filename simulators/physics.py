"""Healthy sensor physics per machine type: load cycles, ambient temperature, load-sensor coupling, noise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulators import randomness
from simulators.machine_types import CNC, COMPRESSOR, PUMP, MachineType

TWO_PI = 2.0 * np.pi
_MID_JULY_2000 = 11_153  # days since the Unix epoch; the seasonal peak of a northern-hemisphere site
_YEAR_DAYS = 365.2425

Params = dict[str, np.ndarray]
Readings = dict[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class Clock:
    """Time of each cell for a block of machines × steps, in UTC and in each machine's local time."""

    epoch_s: np.ndarray  # (1, n) seconds since the Unix epoch
    hour: np.ndarray  # (m, n) local hour of day
    weekend: np.ndarray  # (m, n) local Saturday or Sunday
    ambient_c: np.ndarray  # (m, n) hall temperature: site mean + season + day


def make_clock(epoch_s: np.ndarray, p: Params) -> Clock:
    """Local time and ambient temperature for machines with profile p (arrays shaped (m, 1))."""
    local = epoch_s[None, :] + p["tz_offset_h"] * 3600.0
    hour = (local % 86_400.0) / 3600.0
    weekday = (np.floor_divide(local, 86_400.0) + 3.0) % 7.0  # 1970-01-01 was a Thursday
    season = np.cos(TWO_PI * (epoch_s / 86_400.0 - _MID_JULY_2000) / _YEAR_DAYS)[None, :]
    ambient = p["ambient_mean_c"] + p["season_amp_c"] * season + 3.0 * np.cos(TWO_PI * (hour - 15.0) / 24.0)
    return Clock(epoch_s[None, :], hour, weekday >= 5.0, ambient)


def _noisy(mtype: MachineType, values: Readings, z: np.ndarray) -> Readings:
    """Add each sensor's Gaussian noise; z is (m, channels, n) with one channel per sensor first."""
    for ch, sensor in enumerate(mtype.sensors):
        if sensor.name == "rpm":
            values["rpm"] = values["rpm"] * (1.0 + sensor.noise_sd * z[:, ch])
        else:
            values[sensor.name] = values[sensor.name] + sensor.noise_sd * z[:, ch]
    return values


def pump(p: Params, clock: Clock, z: np.ndarray) -> Readings:
    """Centrifugal pump on its curve: demand follows the day, pressure falls and current rises with flow."""
    day = 0.5 * (1.0 + np.cos(TWO_PI * (clock.hour - 14.0 - p["phase_h"]) / 24.0))
    smooth = 0.62 + 0.28 * day - 0.05 * clock.weekend
    demand = smooth + 0.02 * z[:, 5]
    pressure = p["p0"] * (1.18 - 0.30 * demand**2)
    # Rated current from hydraulic power at 70 % efficiency on a 400 V, cos φ 0.87 motor.
    i_rated = p["q0"] / 3600.0 * p["p0"] * 1e5 / 0.7 / (1.732 * 400.0 * 0.87)
    values = {
        "flow_m3h": p["q0"] * demand,
        "discharge_pressure_bar": pressure,
        "motor_current_a": i_rated * (0.35 + 0.65 * demand * pressure / p["p0"]),
        "bearing_temp_c": clock.ambient_c + p["trise"] * (0.6 + 0.5 * smooth),
        "vibration_rms_mm_s": p["v0"] * (0.85 + 0.25 * demand),
    }
    return _noisy(PUMP, values, z)


def compressor(p: Params, clock: Clock, z: np.ndarray) -> Readings:
    """Screw compressor: shift-driven air demand, load/unload pressure band, heat rising with duty."""
    on_shift = (clock.hour >= 6.0) & (clock.hour < 22.0) & ~clock.weekend
    weekend_level = 0.5 * (p["d_on"] + p["d_off"]) + 0.03
    level = np.where(clock.weekend, weekend_level, np.where(on_shift, p["d_on"], p["d_off"]))
    duty = np.clip(level + 0.03 * z[:, 5], 0.05, 1.0)
    band = np.sin(TWO_PI * clock.epoch_s / p["period_s"] + p["phase_h"])
    values = {
        "discharge_temp_c": clock.ambient_c + 55.0 + 25.0 * duty,
        "pressure_bar": p["p_set"] - 0.35 + 0.35 * band,
        "oil_temp_c": clock.ambient_c + 38.0 + 16.0 * duty,
        "motor_current_a": p["i0"] * (0.3 + 0.7 * duty),
        "duty_cycle_pct": 100.0 * duty,
    }
    return _noisy(COMPRESSOR, values, z)


def cnc_spindle(p: Params, clock: Clock, z: np.ndarray) -> Readings:
    """CNC spindle: jobs with their own speed and load in shifts, idle between jobs, off outside shifts."""
    shift_hours = np.where(clock.weekend, p["shifts"] - 1.0, p["shifts"]) * 8.0
    on_shift = ((clock.hour - 6.0) % 24.0) < shift_hours
    job = np.floor_divide(clock.epoch_s + p["job_phase_s"], p["job_s"]).astype(np.int64)
    base = p["key"] ^ (job.astype(np.uint64) * np.uint64(0x9E3779B1))
    u_speed = randomness.hash_uniform(base)
    u_idle = randomness.hash_uniform(base ^ np.uint64(0x5BD1E995))
    u_load = randomness.hash_uniform(base ^ np.uint64(0x1B873593))
    cutting = on_shift & (u_idle >= 0.12)
    speed = np.round(p["rpm_max"] * (0.3 + 0.65 * u_speed), -2)
    rpm = np.where(cutting, speed, 0.0)
    rel = rpm / p["rpm_max"]
    load = np.where(cutting, 20.0 + 55.0 * u_load, 1.0)
    values = {
        "spindle_load_pct": load,
        "vibration_rms_mm_s": np.where(cutting, p["spindle_v0"] + 1.2 * rel + 0.012 * load, 0.15),
        "spindle_temp_c": clock.ambient_c + np.where(cutting, 8.0 + 18.0 * rel * (0.6 + load / 100.0), 3.0),
        "rpm": rpm,
    }
    return _noisy(CNC, values, z)


PHYSICS: dict[str, Callable[[Params, Clock, np.ndarray], Readings]] = {
    PUMP.name: pump,
    COMPRESSOR.name: compressor,
    CNC.name: cnc_spindle,
}

NOISE_CHANNELS = 6  # five sensors at most plus one load-jitter channel
