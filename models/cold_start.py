"""Cold start: a machine type without failure history still protects the fleet.

Until a type has `Settings.cold_start_min_failures` failure labels, training registers a `ColdStartModel`:
the OEM's warning/alarm limits of the type's sensors (machine types as data), the trend forecast to the
limit and the anomaly score, with no supervised risk. Its risk is 1.0 at an alarm limit, 0.9 at a
warning limit (from a machine's first reading on), 0.85 when the trend crosses a limit within 72 h, else
the anomaly score (both need the features' history); it alerts from 0.8 (an anomaly score of 0.8 is a
deviation of 24 robust sd). Its predictions carry the status
`cold_start` and say "no failure history yet". Once the labels exist, the supervised model takes over.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from fleet import display, machine_types
from fleet.audit import Actor
from models import champion, limits, statuses, versions
from models.fleet_features import Prepared
from models.fleet_model import INSUFFICIENT, SILENT, FleetModel
from models.labels import make_targets

STATUS = statuses.COLD_START_STATUS
NOTE = display.NO_FAILURE_HISTORY
TREND_RISK, THRESHOLD = 0.85, 0.8
TREND_HOURS = 72.0


class ColdStartModel(FleetModel):
    """OEM limits, trend to limit and anomaly score of one type, fitted on its telemetry alone."""

    def __init__(
        self,
        *,
        limits: dict[str, dict] | None = None,
        horizon_hours: float = 168.0,
        statsmodels_top: int = 0,
        n_threads: int | None = 1,
        random_state: int = 0,
    ):
        super().__init__(
            horizon_hours=horizon_hours,
            statsmodels_top=statsmodels_top,
            n_threads=n_threads,
            random_state=random_state,
        )
        self.limits = limits

    def fit(self, X: pd.DataFrame, y: pd.DataFrame | None = None) -> ColdStartModel:
        """Learn the healthy reference from telemetry; `y` is ignored (there is no failure history)."""
        none = pd.DataFrame(
            {
                "machine": [],
                "ts": pd.to_datetime([], utc=True),
                "mode": [],
                "has_precursor": pd.Series([], dtype=bool),
            }
        )
        super().fit(X, make_targets(X, none, None))
        self.limits_ = {s: dict(v) for s, v in (self.limits or {}).items() if s in self.features_.sensors_}
        self.threshold_ = THRESHOLD
        return self

    def _risk_rows(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Limit risk or anomaly score per row (the trend is forecast for a machine's latest row only)."""
        _, _, anomaly = self._table_rows(X)  # the limits below, warning and alarm, once
        limit, _, _ = self._beyond(X, self._limits(), limits.WARNING_AND_ALARM)
        return np.where(
            np.isnan(anomaly), np.where(limit > 0, limit, np.nan), np.fmax(limit, anomaly)
        ), anomaly

    def _with_limits(self, out: pd.DataFrame, X: pd.DataFrame, prep: Prepared) -> pd.DataFrame:
        """Limit, trend or anomaly risk, whichever is highest, and why in words."""
        latest = self._latest_readings(X, prep, np.ones(len(prep.machines), dtype=bool))
        limit, sensor, held = self._beyond_latest(X, prep, self._limits(), limits.WARNING_AND_ALARM)
        soon = np.nan_to_num(out["eta_h"].to_numpy(dtype=float), nan=np.inf) <= TREND_HOURS
        anomaly = np.nan_to_num(out["anomaly_score"].to_numpy(dtype=float))
        trend = np.where(soon, TREND_RISK, 0.0)
        risk = np.maximum.reduce([limit, trend, anomaly])
        mode = np.where(
            limit >= np.maximum(trend, anomaly),
            np.array([None if s is None else f"limit:{s}" for s in sensor], dtype=object),
            np.where(trend >= anomaly, "trend:" + out["eta_sensor"].fillna("").astype(str), "anomaly"),
        )
        reads = self._trend_reads(X, prep, mode)
        # An OEM limit needs one reading, not the history the anomaly and trend features need.
        ok = (out["status"].to_numpy() != INSUFFICIENT) | (limit > 0)
        out.loc[ok, "risk"] = risk[ok]
        out.loc[ok, "status"] = STATUS
        out.loc[ok, "alert"] = risk[ok] >= self.threshold_
        out.loc[ok, "failure_mode"] = mode[ok]
        specs = getattr(self, "sensor_specs_", {})
        out.loc[ok, "explanation"] = [
            f"{NOTE}: {_reason(m, r, now, read, self._limits(), specs, e, h, self.threshold_)}"
            f"{SILENT if quiet else ''}{quiet}"
            for m, r, now, read, e, h, (_, _, quiet) in zip(
                mode[ok],
                risk[ok],
                latest[ok].to_dict("records"),
                reads[ok],
                out.loc[ok, "eta_h"],
                held[ok],
                out.loc[ok, "explanation"].str.partition(SILENT).values,
                strict=True,
            )
        ]
        return out

    def _trend_reads(self, X: pd.DataFrame, prep: Prepared, mode: np.ndarray) -> np.ndarray:
        """Per machine whose risk is its trend, `limits.last_read` of the sensor forecast (else None)."""
        reads = np.full(len(mode), None, dtype=object)
        for sensor in {m.partition(":")[2] for m in mode if m is not None and m.startswith("trend:")}:
            value, age_s, held = self._last_read(X, prep, sensor)
            for i in np.flatnonzero(mode == f"trend:{sensor}"):
                reads[i] = (value[i], age_s[i], held[i])
        return reads


def _reason(
    mode: str,
    risk: float,
    latest: dict,
    read: tuple | None,
    found: dict,
    specs: dict,
    eta_h: float,
    held_s: float,
    threshold: float,
) -> str:
    """Why a cold-start risk is what it is, in one phrase; `latest` is the machine's latest readings, `read`
    the trend sensor's last reading as `limits.last_read` gives it, `threshold` the risk it alerts from."""
    kind, _, sensor = mode.partition(":")
    if kind == "limit":
        level = limits.level_of(risk)
        return limits.phrase(sensor, latest[sensor], level, found[sensor][level], specs, held_s)
    if kind == "trend":
        spec = limits.spec_of(specs, sensor)
        return f"{spec.words}{_as_read(spec, *read)} forecast to cross its limit in {eta_h:.0f} h"
    # The score is the farthest sensor's robust deviation from the type's reference, squashed into [0, 1).
    return f"readings {display.unusual(risk, threshold)}"


def _as_read(spec: machine_types.SensorSpec, value: float, age_s: float, held: bool) -> str:
    """The reading a trend starts from, as it stands: the machine's reading now while the limit check holds
    it; an older one with its age (the sensor has gone quiet: a technician checks it before trusting the
    forecast); none without one."""
    if not np.isfinite(value):
        return ""
    if held:
        return f" {spec.reading(value)},"
    return f" last read {limits.span(age_s)} ago: {spec.reading(value)},"


def oem_limits(engine: Engine, machine_type: str) -> dict[str, dict]:
    """The warning and alarm limits the type's definition gives, per sensor (empty when none)."""
    with engine.connect() as conn:
        return limits.limits_of(machine_types.model_specs(conn, machine_type))


def register(
    engine: Engine,
    *,
    panel: pd.DataFrame,
    machine_type: str,
    failures: int,
    activate: bool = True,
    by: Actor | None = None,
) -> str:
    """Fit and register a cold-start version; it goes live unless a supervised version already is."""
    model = ColdStartModel(limits=oem_limits(engine, machine_type)).fit(panel)
    live = [v for v in versions.list_versions(engine, machine_type) if v.active]
    supervised = any(v.kind != champion.COLD_START_KIND for v in live)
    return versions.register(
        engine,
        model=model,
        machine_type=machine_type,
        kind=champion.COLD_START_KIND,
        train_start=pd.to_datetime(panel["ts"], utc=True).min().to_pydatetime(),
        train_end=pd.to_datetime(panel["ts"], utc=True).max().to_pydatetime(),
        params=model.get_params(deep=False) | {"trend_limits": dict(model.trend_.limits_)},
        metrics={"threshold": THRESHOLD, "failure_labels": failures, "rows": int(len(panel))},
        activate=activate and not supervised,
        by=by,
        detail={"cold_start": True, "failure_labels": failures},
    )
