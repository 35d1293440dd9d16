"""Machine types: sensors with units and bounds, operating regimes, and failure modes with their physics."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sensor:
    """One sensor channel: name with its unit, noise, rounding and physical bounds."""

    name: str
    noise_sd: float
    decimals: int
    lower: float
    upper: float
    scale: float  # typical magnitude; sizes drift and spike faults


@dataclass(frozen=True, slots=True)
class Effect:
    """How a failure mode moves one sensor at full wear: `mul` x·(1 + size·f), `add` x + size·f."""

    sensor: str
    kind: str
    size: float


@dataclass(frozen=True, slots=True)
class FailureMode:
    """A degradation mode: wear w(t) = exp(r·(t - onset)) - 1 fails the machine when w reaches threshold."""

    name: str
    rate_per_day: float
    threshold: float
    effects: tuple[Effect, ...]
    description: str

    def days_to_failure(self, rate_per_day: float) -> float:
        """Days from onset until the wear crosses the threshold at a given rate."""
        return math.log1p(self.threshold) / rate_per_day


@dataclass(frozen=True, slots=True)
class MachineType:
    """A kind of machine: its sensors, regimes, degradation modes and the label of its sudden failure."""

    name: str
    prefix: str
    serial_code: str
    sensors: tuple[Sensor, ...]
    regimes: tuple[str, ...]
    modes: tuple[FailureMode, ...]
    sudden_mode: str

    @property
    def sensor_names(self) -> tuple[str, ...]:
        """Sensor names in payload order."""
        return tuple(s.name for s in self.sensors)

    def mode(self, name: str) -> FailureMode:
        """The degradation mode with this name."""
        return next(m for m in self.modes if m.name == name)


def _mul(sensor: str, size: float) -> Effect:
    return Effect(sensor, "mul", size)


def _add(sensor: str, size: float) -> Effect:
    return Effect(sensor, "add", size)


PUMP = MachineType(
    name="centrifugal_pump",
    prefix="pump",
    serial_code="CP",
    sensors=(
        Sensor("flow_m3h", 1.2, 2, 0.0, 600.0, 150.0),
        Sensor("discharge_pressure_bar", 0.05, 3, 0.0, 25.0, 7.0),
        Sensor("motor_current_a", 0.6, 2, 0.0, 600.0, 80.0),
        Sensor("bearing_temp_c", 0.3, 2, -40.0, 200.0, 50.0),
        Sensor("vibration_rms_mm_s", 0.08, 3, 0.0, 50.0, 2.0),
    ),
    regimes=("day demand (peak 14:00 local)", "night demand", "weekend (-5 %)"),
    modes=(
        FailureMode(
            "bearing_wear",
            0.45,
            20.0,
            (_mul("vibration_rms_mm_s", 3.5), _add("bearing_temp_c", 22.0), _mul("motor_current_a", 0.05)),
            "rolling-element bearing wear: vibration and bearing temperature rise exponentially",
        ),
        FailureMode(
            "seal_leak",
            0.30,
            10.0,
            (_mul("discharge_pressure_bar", -0.30), _mul("flow_m3h", -0.25), _mul("motor_current_a", -0.04)),
            "mechanical seal leak: discharge pressure and delivered flow drop",
        ),
        FailureMode(
            "impeller_fouling",
            0.20,
            8.0,
            (_mul("flow_m3h", -0.35), _mul("motor_current_a", 0.20), _mul("vibration_rms_mm_s", 0.30)),
            "impeller fouling: flow drops while the motor draws more current",
        ),
    ),
    sudden_mode="coupling_failure",
)

COMPRESSOR = MachineType(
    name="air_compressor",
    prefix="compressor",
    serial_code="AC",
    sensors=(
        Sensor("discharge_temp_c", 0.5, 2, -40.0, 200.0, 85.0),
        Sensor("pressure_bar", 0.04, 3, 0.0, 16.0, 8.0),
        Sensor("oil_temp_c", 0.4, 2, -40.0, 150.0, 65.0),
        Sensor("motor_current_a", 1.0, 2, 0.0, 600.0, 100.0),
        Sensor("duty_cycle_pct", 1.5, 2, 0.0, 100.0, 60.0),
    ),
    regimes=("on-shift load 06-22 local weekdays", "off-shift load", "weekend load", "load/unload cycling"),
    modes=(
        FailureMode(
            "clogged_filter",
            0.20,
            8.0,
            (
                _mul("motor_current_a", 0.25),
                _add("duty_cycle_pct", 25.0),
                _add("pressure_bar", -0.4),
                _add("discharge_temp_c", 5.0),
            ),
            "clogged intake filter: current and duty cycle up, pressure slightly down",
        ),
        FailureMode(
            "overheating",
            0.35,
            15.0,
            (_add("discharge_temp_c", 30.0), _add("oil_temp_c", 22.0), _mul("motor_current_a", 0.05)),
            "fouled oil cooler: discharge and oil temperatures climb",
        ),
        FailureMode(
            "valve_leak",
            0.25,
            10.0,
            (_add("pressure_bar", -1.2), _add("duty_cycle_pct", 20.0), _mul("motor_current_a", 0.10)),
            "leaking inlet/check valve: pressure drops, the compressor runs loaded longer",
        ),
    ),
    sudden_mode="motor_trip",
)

CNC = MachineType(
    name="cnc_spindle",
    prefix="cnc",
    serial_code="CS",
    sensors=(
        Sensor("spindle_load_pct", 1.5, 2, 0.0, 150.0, 50.0),
        Sensor("vibration_rms_mm_s", 0.05, 3, 0.0, 50.0, 1.5),
        Sensor("spindle_temp_c", 0.3, 2, -40.0, 150.0, 40.0),
        Sensor("rpm", 0.002, 0, 0.0, 40_000.0, 10_000.0),  # relative noise: the speed loop is tight
    ),
    regimes=("cutting (job speed and load)", "idle between jobs", "off shift", "2-3 shifts weekdays"),
    modes=(
        FailureMode(
            "bearing_wear",
            0.40,
            20.0,
            (_mul("vibration_rms_mm_s", 3.0), _add("spindle_temp_c", 15.0)),
            "spindle bearing wear: vibration and spindle temperature rise exponentially",
        ),
        FailureMode(
            "overheating",
            0.35,
            15.0,
            (_add("spindle_temp_c", 25.0), _mul("spindle_load_pct", 0.15)),
            "lubrication/cooling loss: spindle temperature climbs, load rises with friction",
        ),
    ),
    sudden_mode="spindle_crash",
)

MACHINE_TYPES: dict[str, MachineType] = {t.name: t for t in (PUMP, COMPRESSOR, CNC)}

# Union of all sensor columns in the long panel, in a stable order.
SENSOR_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(s for t in MACHINE_TYPES.values() for s in t.sensor_names)
)

ALL_MODES: frozenset[str] = frozenset(m.name for t in MACHINE_TYPES.values() for m in t.modes)
