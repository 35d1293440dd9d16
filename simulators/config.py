"""Fleet simulation settings: one frozen, validated value from which the whole run follows."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from simulators.machine_types import ALL_MODES, MACHINE_TYPES

DEFAULT_TYPE_MIX: tuple[tuple[str, float], ...] = (
    ("centrifugal_pump", 0.5),
    ("air_compressor", 0.3),
    ("cnc_spindle", 0.2),
)

MAX_MACHINES = 100_000  # the scale on paper; the ground truth of every machine is drawn up front, in memory
MAX_SEED = 2**63 - 1
# Telemetry timestamps are nanoseconds in int64 (pandas): 1677 to 2262; before 1970 is no machine's history.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 1, 1, tzinfo=UTC)
_FLOATS = (
    "days",
    "failure_rate",
    "sudden_share",
    "fault_rate",
    "bad_payload_rate",
    "maintenance_interval_days",
    "maintenance_hours",
    "repair_hours",
)


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """What to simulate: fleet size and span, seed, and the rates of failures, faults and bad payloads.

    failure_rate: failure initiations per machine-year (Poisson hazard while healthy). Each initiation is a
    sudden failure (share `sudden_share`) or the onset of a degradation that fails the machine days later
    unless preventive maintenance catches it first.
    fault_rate: sensor-fault episodes per machine-day. bad_payload_rate: share of all published messages
    that are invalid. maintenance_interval_days: preventive maintenance period (None: run to failure).
    """

    machines: int = 30
    days: float = 7.0
    seed: int = 0
    step_seconds: int = 60
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    failure_rate: float = 6.0
    sudden_share: float = 0.2
    fault_rate: float = 0.05
    bad_payload_rate: float = 0.001
    maintenance_interval_days: float | None = 90.0
    maintenance_hours: float = 4.0
    repair_hours: float = 24.0
    tenants: tuple[str, ...] = ("acme", "globex", "initech")
    type_mix: tuple[tuple[str, float], ...] = DEFAULT_TYPE_MIX
    modes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.type_mix, Mapping):
            object.__setattr__(self, "type_mix", tuple((str(k), float(v)) for k, v in self.type_mix.items()))
        object.__setattr__(self, "tenants", tuple(self.tenants))
        if self.modes is not None:
            object.__setattr__(self, "modes", tuple(self.modes))
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        self._validate()

    def _validate(self) -> None:
        if not 1 <= self.machines <= MAX_MACHINES:
            raise ValueError(f"machines must be within [1, {MAX_MACHINES:,}]")
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be an integer within [0, {MAX_SEED}] (the store keeps it as BIGINT)")
        not_finite = [name for name in _FLOATS if not math.isfinite(getattr(self, name) or 0.0)]
        if not_finite:
            raise ValueError(f"{', '.join(not_finite)} must be a finite number")
        if self.step_seconds < 1 or 86_400 % self.step_seconds:
            raise ValueError("step_seconds must divide a day (86,400 s)")
        if self.steps < 1:
            raise ValueError("days must cover at least one step")
        if self.start < EARLIEST or self.steps * self.step_seconds > (LATEST - self.start).total_seconds():
            raise ValueError(
                f"start and days must keep the run within {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}"
            )
        if self.failure_rate < 0:
            raise ValueError("failure_rate must be >= 0 (failures per machine-year)")
        if not 0.0 <= self.sudden_share <= 1.0:
            raise ValueError("sudden_share must be within [0, 1]")
        if self.fault_rate < 0:
            raise ValueError("fault_rate must be >= 0 (sensor-fault episodes per machine-day)")
        if not 0.0 <= self.bad_payload_rate <= 0.5:
            raise ValueError("bad_payload_rate must be within [0, 0.5] (share of all messages)")
        if self.maintenance_interval_days is not None and self.maintenance_interval_days <= 0:
            raise ValueError("maintenance_interval_days must be positive or None")
        if self.maintenance_hours <= 0 or self.repair_hours <= 0:
            raise ValueError("maintenance_hours and repair_hours must be positive")
        if not self.tenants:
            raise ValueError("at least one tenant is needed")
        unknown = {name for name, _ in self.type_mix} - MACHINE_TYPES.keys()
        if unknown:
            raise ValueError(f"unknown machine types {sorted(unknown)}; known: {sorted(MACHINE_TYPES)}")
        if any(w < 0 for _, w in self.type_mix) or sum(w for _, w in self.type_mix) <= 0:
            raise ValueError("type_mix weights must be >= 0 with a positive sum")
        if self.modes is not None and set(self.modes) - ALL_MODES:
            raise ValueError(f"unknown failure modes {sorted(set(self.modes) - ALL_MODES)}")

    @property
    def steps_per_day(self) -> int:
        """Time steps in one day."""
        return 86_400 // self.step_seconds

    @property
    def steps(self) -> int:
        """Time steps in the run."""
        return round(self.days * self.steps_per_day)
