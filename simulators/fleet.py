"""The simulated fleet: which machines exist, who owns them, and each machine's hidden physical profile."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from simulators import randomness
from simulators.config import FleetConfig
from simulators.machine_types import MACHINE_TYPES

SITES_PER_TENANT = 2
CONTRACT_TIERS = ("basic", "standard", "premium")
_TZ_OFFSETS_H = (-6, -5, 0, 1, 2, 8)
_RPM_MAX = np.array([8_000.0, 12_000.0, 18_000.0, 24_000.0])
MAX_MODES = max(len(t.modes) for t in MACHINE_TYPES.values())


def _type_counts(config: FleetConfig) -> list[tuple[str, int]]:
    """Machines per type by largest remainder, so the mix holds exactly."""
    total = sum(w for _, w in config.type_mix)
    exact = [(name, config.machines * w / total) for name, w in config.type_mix]
    counts = {name: int(x) for name, x in exact}
    left = config.machines - sum(counts.values())
    for name, _ in sorted(exact, key=lambda item: item[1] - int(item[1]), reverse=True)[:left]:
        counts[name] += 1
    return [(name, counts[name]) for name, _ in config.type_mix]


def _sites(config: FleetConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Sites per tenant with their climate and time zone (a factory hall, not the open sky)."""
    rows = []
    for tenant in config.tenants:
        tz = int(rng.choice(_TZ_OFFSETS_H))
        for k in range(SITES_PER_TENANT):
            rows.append(
                {
                    "site": f"{tenant}-site-{k + 1}",
                    "tenant": tenant,
                    "tz_offset_h": tz,
                    "ambient_mean_c": float(rng.uniform(14.0, 22.0)),
                    "season_amp_c": float(rng.uniform(3.0, 8.0)),
                }
            )
    return pd.DataFrame(rows)


def _layout(config: FleetConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = randomness.stream(config.seed, randomness.FLEET)
    sites = _sites(config, rng)
    types = np.concatenate([np.full(n, name, dtype=object) for name, n in _type_counts(config)])
    types = types[rng.permutation(config.machines)]
    numbers: dict[str, int] = {}
    machine_ids, serials = [], []
    tenant_idx = rng.integers(0, len(config.tenants), config.machines)
    site_k = rng.integers(0, SITES_PER_TENANT, config.machines)
    age_days = rng.uniform(180.0, 8 * 365.0, config.machines)
    tiers = rng.choice(len(CONTRACT_TIERS), config.machines, p=[0.5, 0.35, 0.15])
    serial_hex = rng.integers(0, 16**6, config.machines)
    start_day = pd.Timestamp(config.start).floor("D")
    for i, name in enumerate(types):
        mtype = MACHINE_TYPES[name]
        numbers[name] = numbers.get(name, 0) + 1
        machine_ids.append(f"{mtype.prefix}-{numbers[name]:04d}")
        year = (start_day - timedelta(days=float(age_days[i]))).year
        serials.append(f"{mtype.serial_code}-{year}-{int(serial_hex[i]):06X}")
    tenants = [config.tenants[t] for t in tenant_idx]
    machines = pd.DataFrame(
        {
            "tenant": tenants,
            "machine": machine_ids,
            "machine_type": list(types),
            "serial": serials,
            "installed": start_day - pd.to_timedelta(np.floor(age_days), unit="D"),
            "contract_tier": [CONTRACT_TIERS[t] for t in tiers],
            "site": [f"{t}-site-{k + 1}" for t, k in zip(tenants, site_k, strict=True)],
        }
    )
    return machines, sites


def build_fleet(config: FleetConfig) -> pd.DataFrame:
    """Machines of the fleet: tenant, machine, machine_type, serial, installed, contract_tier, site."""
    return _layout(config)[0]


def build_profiles(config: FleetConfig, machines: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
    """Per-machine physical parameters (arrays indexed like the fleet), hidden from the payloads."""
    if machines is None:
        machines = build_fleet(config)
    sites = _layout(config)[1].set_index("site")
    n = len(machines)
    u = np.empty((n, 8))
    rate_mult = np.empty((n, MAX_MODES))
    keys = np.empty(n, dtype=np.uint64)
    for m in range(n):
        rng = randomness.stream(config.seed, randomness.PROFILE, m)
        u[m] = rng.random(8)
        rate_mult[m] = np.clip(rng.lognormal(0.0, 0.3, MAX_MODES), 0.5, 2.0)
        keys[m] = rng.integers(0, 2**63, dtype=np.uint64)
    site = sites.loc[machines["site"]]
    return {
        "tz_offset_h": site["tz_offset_h"].to_numpy(dtype=float),
        "ambient_mean_c": site["ambient_mean_c"].to_numpy(dtype=float),
        "season_amp_c": site["season_amp_c"].to_numpy(dtype=float),
        "phase_h": (u[:, 0] - 0.5) * 2.0,
        "key": keys,
        "rate_mult": rate_mult,
        # centrifugal pump
        "q0": 60.0 + 180.0 * u[:, 1],
        "p0": 4.0 + 6.0 * u[:, 2],
        "v0": 1.2 + 1.0 * u[:, 3],
        "trise": 15.0 + 10.0 * u[:, 4],
        # air compressor
        "i0": 60.0 + 140.0 * u[:, 1],
        "p_set": 7.0 + 3.0 * u[:, 2],
        "period_s": 360.0 + 540.0 * u[:, 3],
        "d_on": 0.65 + 0.20 * u[:, 4],
        "d_off": 0.35 + 0.20 * u[:, 5],
        # CNC spindle
        "rpm_max": _RPM_MAX[np.minimum((u[:, 1] * 4).astype(int), 3)],
        "job_s": 900.0 + 2_700.0 * u[:, 2],
        "shifts": np.where(u[:, 3] < 0.5, 2.0, 3.0),
        "spindle_v0": 0.4 + 0.4 * u[:, 4],
        "job_phase_s": np.floor(u[:, 5] * 86_400.0),
    }
