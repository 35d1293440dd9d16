"""The seeded, vectorised fleet engine: ground truth up front, telemetry as a long panel in chunks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simulators import faults, physics, randomness, timeline
from simulators.config import FleetConfig
from simulators.fleet import build_fleet, build_profiles
from simulators.machine_types import MACHINE_TYPES, SENSOR_COLUMNS, MachineType

BAD_PAYLOAD_KINDS = (
    "malformed_json",
    "reading_as_string",
    "missing_seq",
    "missing_ts",
    "readings_not_object",
)
BAD_PAYLOAD_COLUMNS = ["tenant", "machine", "seq", "ts", "kind"]
_NS = 1_000_000_000


@dataclass(eq=False)
class SimulationRun:
    """One simulated fleet: machines and ground truth as tables, telemetry generated on demand."""

    config: FleetConfig
    machines: pd.DataFrame
    failures: pd.DataFrame
    maintenance: pd.DataFrame
    sensor_faults: pd.DataFrame
    bad_payloads: pd.DataFrame
    repairs: pd.DataFrame  # alert visits that replaced a worn part (truth, never written as labels)
    _profiles: dict[str, np.ndarray] = field(repr=False)
    _timeline: timeline.Timeline = field(repr=False)
    _faults: list[list[faults.SensorFault]] = field(repr=False)

    def __post_init__(self) -> None:
        types = list(MACHINE_TYPES)
        self._type_code = np.array([types.index(t) for t in self.machines["machine_type"]], dtype=np.int8)
        tenants = list(self.config.tenants)
        self._tenant_code = np.array([tenants.index(t) for t in self.machines["tenant"]], dtype=np.int16)
        self._start_ns = pd.Timestamp(self.config.start).value

    @property
    def readings_per_step(self) -> int:
        """Sensor values the whole fleet produces per step when nothing is down or dropped."""
        return int(sum(len(MACHINE_TYPES[t].sensors) for t in self.machines["machine_type"]))

    def ts_bound(self) -> pd.Timestamp:
        """No message of the run is stamped later: its last step's time, or later where a clock runs ahead."""
        step_ns = self.config.step_seconds * _NS
        latest = self._start_ns + (self.config.steps - 1) * step_ns
        for fault in (f for machine in self._faults for f in machine if f.kind == "clock_skew"):
            # rounded to the millisecond as in _panel
            ahead = round(fault.magnitude * 1e3) * 1_000_000
            latest = max(latest, self._start_ns + (fault.end - 1) * step_ns + ahead)
        return pd.Timestamp(latest, tz="UTC")

    def iter_panels(self, chunk_machines: int = 250, chunk_steps: int = 1440) -> Iterator[pd.DataFrame]:
        """Long-panel chunks, time blocks outer and machine blocks inner; rows ordered by (seq, machine)."""
        n, steps = len(self.machines), self.config.steps
        for s0 in range(0, steps, chunk_steps):
            for m0 in range(0, n, chunk_machines):
                yield self._panel(
                    np.arange(m0, min(n, m0 + chunk_machines)), s0, min(steps, s0 + chunk_steps)
                )

    def telemetry(self, max_rows: int = 5_000_000) -> pd.DataFrame:
        """The whole long panel in time order; refuses runs above max_rows (use iter_panels)."""
        rows = len(self.machines) * self.config.steps
        if rows > max_rows:
            raise ValueError(f"{rows:,} rows exceed max_rows={max_rows:,}; iterate with iter_panels()")
        return pd.concat(list(self.iter_panels(chunk_machines=len(self.machines))), ignore_index=True)

    def with_visits(self, visits: Mapping[str, Sequence[pd.Timestamp]]) -> SimulationRun:
        """The same fleet with technicians' alert visits (machine → their times), its events drawn again."""
        events = timeline.build_timeline(self.config, self.machines, self._profiles, visits)
        return dataclasses.replace(
            self,
            failures=events.failures,
            maintenance=events.maintenance,
            repairs=events.repairs,
            _timeline=events,
        )

    def refresh(self, panel: pd.DataFrame, since: Mapping[str, pd.Timestamp]) -> None:
        """Rewrite, in a panel from `telemetry()`, the rows of these machines from these times on."""
        n, steps = len(self.machines), self.config.steps
        codes = {name: i for i, name in enumerate(self.machines["machine"])}
        step = pd.Timedelta(seconds=self.config.step_seconds)
        chunks, positions = [], []
        for name, at in since.items():
            s0 = max(0, (pd.Timestamp(at) - pd.Timestamp(self.config.start)) // step)
            if s0 < steps:
                chunks.append(self._panel(np.array([codes[name]]), s0, steps))
                positions.append(np.arange(s0, steps) * n + codes[name])
        if not chunks:
            return
        rows, pos = pd.concat(chunks, ignore_index=True), np.concatenate(positions)
        if (
            len(panel) != n * steps
            or (panel["machine"].cat.codes.to_numpy()[pos] != rows["machine"].cat.codes).any()
        ):
            raise ValueError("the panel is not this fleet's telemetry() in full")
        for col in ("state", *SENSOR_COLUMNS):
            panel.iloc[pos, panel.columns.get_loc(col)] = rows[col].to_numpy()

    def _block(self, idx: np.ndarray, s0: int, s1: int, with_faults: bool = True) -> tuple:
        """Readings (m, n) per sensor, state codes and clock skew in seconds for machines of one type."""
        cfg = self.config
        mtype = MACHINE_TYPES[self.machines["machine_type"].iat[int(idx[0])]]
        p = {k: v[idx][:, None] for k, v in self._profiles.items() if v.ndim == 1}
        steps = np.arange(s0, s1)
        epoch_s = self._start_ns / _NS + steps * float(cfg.step_seconds)
        clock = physics.make_clock(epoch_s, p)
        z = np.stack(
            [
                randomness.noise_block(cfg.seed, int(m), s0, s1, physics.NOISE_CHANNELS, cfg.steps_per_day)
                for m in idx
            ]
        )
        values = physics.PHYSICS[mtype.name](p, clock, z)
        state = np.zeros((len(idx), s1 - s0), dtype=np.int8)
        for row, m in enumerate(idx):
            self._degrade(mtype, values, state, row, int(m), steps)
        down = state != timeline.RUNNING
        for x in values.values():
            x[down] = np.nan
        skew = np.zeros(state.shape)
        if with_faults:
            for row, m in enumerate(idx):
                for fault in self._faults[m]:
                    if fault.end > s0 and fault.start < s1:
                        faults.apply_fault(fault, values, skew, row, s0, self._stuck_value(int(m), fault))
        for sensor in mtype.sensors:
            x = values[sensor.name]
            np.clip(x, sensor.lower, sensor.upper, out=x)
            np.round(x, sensor.decimals, out=x)
        return values, state, skew

    def _degrade(
        self, mtype: MachineType, values: dict, state: np.ndarray, row: int, m: int, steps: np.ndarray
    ) -> None:
        """Apply wear effects and downtime states of machine m to one row of a block."""
        s0, s1 = int(steps[0]), int(steps[-1]) + 1
        for ep in self._timeline.episodes[m]:
            if ep.end <= s0 or ep.onset >= s1:
                continue
            f = ep.fraction(steps)
            for eff in mtype.modes[ep.mode].effects:
                x = values[eff.sensor]
                if eff.kind == "mul":
                    x[row] *= 1.0 + eff.size * f
                else:
                    x[row] += eff.size * f
        for dt in self._timeline.downtime[m]:
            if dt.end > s0 and dt.start < s1:
                state[row, max(dt.start, s0) - s0 : min(dt.end, s1) - s0] = dt.state

    def _stuck_value(self, m: int, fault: faults.SensorFault) -> Callable[[], float]:
        """A callable giving the fault-free reading at the fault's first step, where a stuck sensor froze."""

        def value() -> float:
            values, _, _ = self._block(np.array([m]), fault.start, fault.start + 1, with_faults=False)
            return float(values[fault.sensor][0, 0])

        return value

    def _panel(self, idx: np.ndarray, s0: int, s1: int) -> pd.DataFrame:
        """One chunk of the long panel for machines idx over steps [s0, s1)."""
        n_steps, n_m = s1 - s0, len(idx)
        cols = {name: np.full((n_steps, n_m), np.nan) for name in SENSOR_COLUMNS}
        state = np.zeros((n_steps, n_m), dtype=np.int8)
        skew = np.zeros((n_steps, n_m))
        codes = self._type_code[idx]
        for code in np.unique(codes):
            pos = np.flatnonzero(codes == code)
            values, st, sk = self._block(idx[pos], s0, s1)
            for name, x in values.items():
                cols[name][:, pos] = x.T
            state[:, pos] = st.T
            skew[:, pos] = sk.T
        machine_codes = np.tile(idx, n_steps)
        steps = np.repeat(np.arange(s0, s1, dtype=np.int64), n_m)
        ts_ns = (
            self._start_ns
            + steps * (self.config.step_seconds * _NS)
            + np.round(skew.ravel() * 1e3).astype(np.int64) * 1_000_000
        )
        data = {
            "tenant": pd.Categorical.from_codes(self._tenant_code[machine_codes], list(self.config.tenants)),
            "machine": pd.Categorical.from_codes(machine_codes, self.machines["machine"].tolist()),
            "machine_type": pd.Categorical.from_codes(self._type_code[machine_codes], list(MACHINE_TYPES)),
            "seq": steps + 1,
            "ts": pd.Series(ts_ns.astype(np.int64).view("M8[ns]")).dt.tz_localize("UTC"),
            "state": pd.Categorical.from_codes(state.ravel(), list(timeline.STATES)),
        }
        data.update({name: x.ravel() for name, x in cols.items()})
        return pd.DataFrame(data, copy=False)


def _bad_payloads(config: FleetConfig, machines: pd.DataFrame) -> pd.DataFrame:
    """Which (machine, seq) get an extra invalid message after the valid one, and of what kind."""
    rows = []
    q = config.bad_payload_rate / (1.0 - config.bad_payload_rate)  # per valid message → share of all messages
    start = pd.Timestamp(config.start)
    for m, row in enumerate(machines.itertuples(index=False)):
        if q <= 0:
            break
        rng = randomness.stream(config.seed, randomness.BAD_PAYLOADS, m)
        count = int(rng.binomial(config.steps, q))
        steps = np.sort(rng.choice(config.steps, count, replace=False))
        kinds = rng.integers(len(BAD_PAYLOAD_KINDS), size=count)
        for s, k in zip(steps.tolist(), kinds.tolist(), strict=True):
            ts = start + pd.Timedelta(seconds=s * config.step_seconds)
            rows.append((row.tenant, row.machine, s + 1, ts, BAD_PAYLOAD_KINDS[k]))
    table = pd.DataFrame(rows, columns=BAD_PAYLOAD_COLUMNS)
    table["seq"] = table["seq"].astype(np.int64)
    table["ts"] = pd.to_datetime(table["ts"], utc=True)
    return table


def simulate(config: FleetConfig) -> SimulationRun:
    """Build the fleet and draw every event up front; telemetry is generated lazily from the same seed."""
    machines = build_fleet(config)
    profiles = build_profiles(config, machines)
    events = timeline.build_timeline(config, machines, profiles)
    fault_lists, fault_table = faults.draw_faults(config, machines)
    return SimulationRun(
        config=config,
        machines=machines,
        failures=events.failures,
        maintenance=events.maintenance,
        sensor_faults=fault_table,
        bad_payloads=_bad_payloads(config, machines),
        repairs=events.repairs,
        _profiles=profiles,
        _timeline=events,
        _faults=fault_lists,
    )
