"""Machine types of the simulated fleet, read from its types file (`fleet_types.yaml`) and its physics.

The product part of the file (sensors, components, failure modes, codes) is what `servicecast types apply`
stores; the `simulation:` block adds what only the simulator needs (noise, rounding, wear rates, effects).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from fleet import machine_types as type_store
from fleet import type_files
from fleet.audit import Actor
from fleet.type_checks import SIMULATION, Problem, field_name


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


TYPES_FILE = Path(__file__).with_name("fleet_types.yaml")


def load(path: str | Path = TYPES_FILE) -> dict[str, MachineType]:
    """The simulated types of a types file: its definitions and each type's `simulation:` block, checked
    as `servicecast types apply` checks them (a `TypesFileError` names each problem's line and field)."""
    parsed = type_files.read(path)
    missing = [
        Problem(
            parsed.source, None, field_name(("machine_types", i, SIMULATION)), "is required by the simulator"
        )
        for i, name in enumerate(parsed.definitions)
        if not parsed.simulation[name]
    ]
    if missing:
        raise type_files.TypesFileError(missing)
    return {name: _machine_type(d, parsed.simulation[name]) for name, d in parsed.definitions.items()}


def apply_to_store(engine: Engine, by: Actor) -> str:
    """Store this file's types as `servicecast types apply` does; one line naming their versions."""
    applied = type_store.apply_file(engine=engine, path=TYPES_FILE, by=by)
    return "types: " + ", ".join(f"{a.name} v{a.version}" for a in applied)


def _machine_type(definition: dict, sim: dict) -> MachineType:
    """A checked type and its checked simulation block as the simulator's values (whole numbers as floats)."""
    sensors = tuple(
        Sensor(
            name=s["name"],
            noise_sd=float(sim["sensors"][s["name"]]["noise_sd"]),
            decimals=sim["sensors"][s["name"]]["decimals"],
            lower=float(s["range"][0]),
            upper=float(s["range"][1]),
            scale=float(sim["sensors"][s["name"]]["scale"]),
        )
        for s in definition["sensors"]
    )
    described = {m["name"]: m["description"] for m in definition.get("failure_modes", [])}
    modes = tuple(
        FailureMode(
            name=name,
            rate_per_day=float(mode["rate_per_day"]),
            threshold=float(mode["threshold"]),
            effects=tuple(Effect(sensor, kind, float(size)) for sensor, kind, size in mode["effects"]),
            description=described[name],
        )
        for name, mode in sim["modes"].items()
    )
    return MachineType(
        name=definition["name"],
        prefix=sim["prefix"],
        serial_code=sim["serial_code"],
        sensors=sensors,
        regimes=tuple(sim["regimes"]),
        modes=modes,
        sudden_mode=sim["sudden_mode"],
    )


MACHINE_TYPES: dict[str, MachineType] = load()
PUMP, COMPRESSOR, CNC = (MACHINE_TYPES[n] for n in ("centrifugal_pump", "air_compressor", "cnc_spindle"))

# Union of all sensor columns in the long panel, in a stable order.
SENSOR_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(s for t in MACHINE_TYPES.values() for s in t.sensor_names)
)

ALL_MODES: frozenset[str] = frozenset(m.name for t in MACHINE_TYPES.values() for m in t.modes)
