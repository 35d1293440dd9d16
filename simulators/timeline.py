"""Per-machine event history: degradation episodes, failures, repairs and preventive maintenance."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulators import randomness
from simulators.config import FleetConfig
from simulators.machine_types import MACHINE_TYPES

# Events start this long before the run so it opens on a fleet in steady state, some machines already worn.
WARMUP_DAYS = 90.0
RUNNING, FAILED, MAINTENANCE = 0, 1, 2
STATES = ("running", "failed", "maintenance")
ALERT_REPAIR = "alert_repair"  # a technician's visit after an alert replaced a worn part


@dataclass(frozen=True, slots=True)
class Episode:
    """Wear of one mode, growing from `onset` (a fractional step) until step `end` (exclusive)."""

    mode: int
    onset: float
    rate_per_step: float
    threshold: float
    end: int

    def fraction(self, steps: np.ndarray) -> np.ndarray:
        """Wear as a share of the failure threshold at these steps (0 outside the episode)."""
        active = (steps >= self.onset) & (steps < self.end)
        since = np.where(active, steps - self.onset, 0.0)
        return np.where(active, np.expm1(self.rate_per_step * since) / self.threshold, 0.0)


@dataclass(frozen=True, slots=True)
class Downtime:
    """Steps [start, end) in which a machine is failed or in maintenance and reports no readings."""

    start: int
    end: int
    state: int


@dataclass(slots=True)
class Timeline:
    """Every machine's episodes and downtimes, plus the ground-truth tables for the run window.

    `repairs` (maintenance columns, kind `ALERT_REPAIR`) are the alert visits that replaced a worn part:
    truth of the world, not in `maintenance`, the labels the simulator writes (only a finding reports them).
    """

    episodes: list[list[Episode]]
    downtime: list[list[Downtime]]
    failures: pd.DataFrame
    maintenance: pd.DataFrame
    repairs: pd.DataFrame


FAILURE_COLUMNS = ["tenant", "machine", "machine_type", "ts", "mode", "has_precursor", "onset", "repaired"]
MAINTENANCE_COLUMNS = ["tenant", "machine", "machine_type", "ts", "end", "kind", "found_mode"]


def _next_pm(t: float, first: float, interval: float | None) -> float:
    if interval is None:
        return math.inf
    return first + max(0, math.ceil((t - first) / interval)) * interval


def _machine_events(
    config: FleetConfig, m: int, mtype_name: str, rate_mult: np.ndarray, visits: Sequence[float] = ()
) -> tuple:
    """Walk one machine from the warm-up to the end of the run; returns episodes, downtimes and records.

    `visits` (sorted days since the start) are technicians' alert visits: one while a wear episode is
    under way replaces the part, so the episode ends there and the machine does not fail.
    """
    mtype = MACHINE_TYPES[mtype_name]
    enabled = [i for i, md in enumerate(mtype.modes) if config.modes is None or md.name in config.modes]
    rng = randomness.stream(config.seed, randomness.TIMELINE, m)
    spd, horizon = config.steps_per_day, config.steps / config.steps_per_day
    hazard = config.failure_rate / 365.25
    interval = config.maintenance_interval_days
    first_pm = -WARMUP_DAYS + (rng.uniform(0.0, interval) if interval else 0.0)
    episodes, downtime, failures, maintenance = [], [], [], []
    t = -WARMUP_DAYS
    while t < horizon:
        # A fixed number of draws per event keeps the stream aligned whatever branch is taken.
        wait = rng.standard_exponential() / hazard if hazard > 0 else math.inf
        sudden = rng.random() < config.sudden_share or not enabled
        mode_i = enabled[int(rng.integers(len(enabled)))] if enabled else -1
        repair_days = config.repair_hours / 24.0 * rng.uniform(0.5, 1.5)
        t_init = t + wait
        rate = mtype.modes[mode_i].rate_per_day * rate_mult[mode_i] if not sudden else 0.0
        t_fail = t_init if sudden else t_init + mtype.modes[mode_i].days_to_failure(rate)
        pm = _next_pm(t, first_pm, interval)
        visit = next((v for v in visits if v >= t_init), math.inf) if not sudden else math.inf
        if visit < min(pm, t_fail):
            v_s, v_e = math.ceil(visit * spd), math.ceil((visit + config.maintenance_hours / 24.0) * spd)
            mode = mtype.modes[mode_i]
            episodes.append(Episode(mode_i, t_init * spd, rate / spd, mode.threshold, v_s))
            downtime.append(Downtime(v_s, v_e, MAINTENANCE))
            if 0 <= v_s < config.steps:
                maintenance.append((v_s, v_e, ALERT_REPAIR, mode.name))
            t = visit + config.maintenance_hours / 24.0
            continue
        if math.isinf(min(pm, t_fail)):
            break
        if pm < t_fail:
            pm_s, pm_e = math.ceil(pm * spd), math.ceil((pm + config.maintenance_hours / 24.0) * spd)
            caught = not sudden and t_init < pm
            if caught:
                mode = mtype.modes[mode_i]
                episodes.append(Episode(mode_i, t_init * spd, rate / spd, mode.threshold, pm_s))
            downtime.append(Downtime(pm_s, pm_e, MAINTENANCE))
            if 0 <= pm_s < config.steps:
                found = mtype.modes[mode_i].name if caught else None
                maintenance.append((pm_s, pm_e, "preventive", found))
            t = pm + config.maintenance_hours / 24.0
            continue
        fail_s, repaired_s = math.ceil(t_fail * spd), math.ceil((t_fail + repair_days) * spd)
        if not sudden:
            mode = mtype.modes[mode_i]
            episodes.append(Episode(mode_i, t_init * spd, rate / spd, mode.threshold, fail_s))
        downtime.append(Downtime(fail_s, repaired_s, FAILED))
        if 0 <= fail_s < config.steps:
            label = mtype.sudden_mode if sudden else mtype.modes[mode_i].name
            failures.append((fail_s, label, not sudden, None if sudden else t_init * spd, repaired_s))
            maintenance.append((fail_s, repaired_s, "repair", None))
        t = t_fail + repair_days
    return episodes, downtime, failures, maintenance


def build_timeline(
    config: FleetConfig,
    machines: pd.DataFrame,
    profiles: dict[str, np.ndarray],
    visits: Mapping[str, Sequence[pd.Timestamp]] | None = None,
) -> Timeline:
    """Draw every machine's history; ground truth covers events that start inside the run window.

    `visits` maps a machine to the times technicians visit it after alerts (see `_machine_events`).
    """
    start = pd.Timestamp(config.start)
    step = pd.Timedelta(seconds=config.step_seconds)
    visits = visits or {}
    all_episodes, all_downtime, fail_rows, maint_rows = [], [], [], []
    for m, row in enumerate(machines.itertuples(index=False)):
        days = sorted((pd.Timestamp(v) - start) / pd.Timedelta(days=1) for v in visits.get(row.machine, ()))
        episodes, downtime, failures, maintenance = _machine_events(
            config, m, row.machine_type, profiles["rate_mult"][m], days
        )
        all_episodes.append(episodes)
        all_downtime.append(downtime)
        who = (row.tenant, row.machine, row.machine_type)
        for fail_s, label, precursor, onset, repaired_s in failures:
            onset_ts = pd.NaT if onset is None else (start + onset * step).round("s")
            fail_rows.append(
                (*who, start + fail_s * step, label, precursor, onset_ts, start + repaired_s * step)
            )
        for s, e, kind, found in maintenance:
            maint_rows.append((*who, start + s * step, start + e * step, kind, found))
    failures_df = pd.DataFrame(fail_rows, columns=FAILURE_COLUMNS)
    maintenance_df = pd.DataFrame(maint_rows, columns=MAINTENANCE_COLUMNS)
    for df, cols in ((failures_df, ("ts", "onset", "repaired")), (maintenance_df, ("ts", "end"))):
        for col in cols:
            df[col] = pd.to_datetime(df[col], utc=True)
    failures_df["has_precursor"] = failures_df["has_precursor"].astype(bool)
    failures_df = failures_df.sort_values(["ts", "machine"], ignore_index=True)
    maintenance_df = maintenance_df.sort_values(["ts", "machine"], ignore_index=True)
    repaired = (maintenance_df["kind"] == ALERT_REPAIR).to_numpy()
    return Timeline(
        all_episodes,
        all_downtime,
        failures_df,
        maintenance_df[~repaired].reset_index(drop=True),
        maintenance_df[repaired].reset_index(drop=True),
    )
