"""NASA C-MAPSS turbofan run-to-failure files replayed as v1 telemetry with their ground-truth failures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from fleet import contract
from simulators.messages import Message, encode, ts_strings

SETTINGS = ["setting_1", "setting_2", "setting_3"]
SENSORS = [f"s{i}" for i in range(1, 22)]
COLUMNS = ["unit", "cycle", *SETTINGS, *SENSORS]
FAILURE_MODE = "hpc_degradation"  # FD001's single fault mode; other subsets add fan degradation
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)

# Payload names with units (Saxena et al. 2008, table 2); °R Rankine, psia, rpm, pps/psi, lbm/s.
READING_NAMES = {
    "setting_1": "altitude_setting",
    "setting_2": "mach_setting",
    "setting_3": "throttle_resolver_angle_setting",
    "s1": "t2_fan_inlet_temp_r",
    "s2": "t24_lpc_outlet_temp_r",
    "s3": "t30_hpc_outlet_temp_r",
    "s4": "t50_lpt_outlet_temp_r",
    "s5": "p2_fan_inlet_pressure_psia",
    "s6": "p15_bypass_duct_pressure_psia",
    "s7": "p30_hpc_outlet_pressure_psia",
    "s8": "nf_fan_speed_rpm",
    "s9": "nc_core_speed_rpm",
    "s10": "epr_engine_pressure_ratio",
    "s11": "ps30_hpc_static_pressure_psia",
    "s12": "phi_fuel_flow_ratio_pps_psi",
    "s13": "nrf_corrected_fan_speed_rpm",
    "s14": "nrc_corrected_core_speed_rpm",
    "s15": "bpr_bypass_ratio",
    "s16": "farb_burner_fuel_air_ratio",
    "s17": "htbleed_bleed_enthalpy",
    "s18": "nf_dmd_demanded_fan_speed_rpm",
    "s19": "pcnfr_dmd_demanded_corrected_fan_speed_rpm",
    "s20": "w31_hpt_coolant_bleed_lbm_s",
    "s21": "w32_lpt_coolant_bleed_lbm_s",
}


def read_cmapss(path: str | Path) -> pd.DataFrame:
    """A C-MAPSS train/test file: unit, cycle, setting_1..3, s1..s21 (26 whitespace-separated columns)."""
    try:
        df = pd.read_csv(path, sep=r"\s+", header=None, engine="c")
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: empty, expected {len(COLUMNS)} columns of numbers per line") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path}: {str(exc).strip().splitlines()[-1]}") from None
    df = df.dropna(axis=1, how="all")  # some copies end each line with spaces
    if df.shape[1] != len(COLUMNS):
        raise ValueError(f"{path}: expected {len(COLUMNS)} columns, found {df.shape[1]}")
    df.columns = COLUMNS
    text = [name for name in COLUMNS if not pd.api.types.is_numeric_dtype(df[name])]
    if text:
        raise ValueError(f"{path}: column {text[0]} holds text, not numbers (e.g. {df[text[0]].iloc[0]!r})")
    return df.astype({"unit": "int64", "cycle": "int64"})


def machine_id(unit: int) -> str:
    """Machine id of an engine unit: 1 → engine-001."""
    return f"engine-{unit:03d}"


def _cycle_ts(df: pd.DataFrame, start: datetime, cycle_seconds: float) -> pd.Series:
    return pd.Timestamp(start).tz_convert("UTC") + pd.to_timedelta(
        (df["cycle"] - 1) * cycle_seconds, unit="s"
    )


def cmapss_failures(
    df: pd.DataFrame, tenant: str = "cmapss", start: datetime = DEFAULT_START, cycle_seconds: float = 3600.0
) -> pd.DataFrame:
    """Ground truth: each unit fails at its last cycle (columns as SimulationRun.failures, plus cycle)."""
    last = df.groupby("unit", as_index=False)["cycle"].max()
    ts = _cycle_ts(last, start, cycle_seconds)
    return pd.DataFrame(
        {
            "tenant": tenant,
            "machine": [machine_id(u) for u in last["unit"]],
            "machine_type": "turbofan",
            "ts": ts,
            "mode": FAILURE_MODE,
            "has_precursor": True,
            "onset": pd.Series(pd.NaT, index=last.index, dtype="datetime64[ns, UTC]"),
            "repaired": pd.Series(pd.NaT, index=last.index, dtype="datetime64[ns, UTC]"),
            "cycle": last["cycle"],
        }
    )


def iter_cmapss_messages(
    df: pd.DataFrame, tenant: str = "cmapss", start: datetime = DEFAULT_START, cycle_seconds: float = 3600.0
) -> Iterator[Message]:
    """One v1 message per (unit, cycle) with seq = cycle, in time order (all units' cycle 1, then 2, …)."""
    ordered = df.sort_values(["cycle", "unit"], kind="stable")
    cols = [*SETTINGS, *SENSORS]
    names = [READING_NAMES[c] for c in cols]
    rows = ordered[cols].to_numpy(dtype=float).tolist()
    ts = ts_strings(_cycle_ts(ordered, start, cycle_seconds))
    for unit, cycle, stamp, row in zip(
        ordered["unit"].tolist(), ordered["cycle"].tolist(), ts, rows, strict=True
    ):
        machine = machine_id(unit)
        readings = {n: v for n, v in zip(names, row, strict=True) if v == v}
        yield Message(
            contract.telemetry_topic(tenant, machine), encode(cycle, stamp, readings), True, machine, cycle
        )
