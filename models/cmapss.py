"""NASA C-MAPSS turbofan benchmark: file formats, a test split made from run-to-failure data, evaluation
and engine-wise cross-validation of the RUL model.
"""

from __future__ import annotations

import time
import warnings
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from models import metrics
from models.features import WindowFeatures
from models.rul import MeanRUL, RULRegressor, run_to_failure_rul

SETTINGS = ["setting1", "setting2", "setting3"]
SENSORS = [f"s{i}" for i in range(1, 22)]
COLUMNS = ["unit", "cycle", *SETTINGS, *SENSORS]
phm08_score = metrics.phm08_score

Path = str | PathLike[str]


def read_cmapss(path: Path) -> pd.DataFrame:
    """A C-MAPSS train or test file (26 whitespace-separated columns) as a frame with named columns."""
    try:  # pandas' errors (empty file, text in a number column) name neither the file nor the line
        df = pd.read_csv(path, sep=r"\s+", header=None, dtype=float)
    except ValueError as exc:
        raise ValueError(f"{path}: not {len(COLUMNS)} columns of numbers per line ({exc})") from None
    if df.shape[1] != len(COLUMNS):
        raise ValueError(f"{path}: expected {len(COLUMNS)} columns, found {df.shape[1]}")
    df.columns = COLUMNS
    return df.astype({"unit": int, "cycle": int})


def write_cmapss(df: pd.DataFrame, path: Path) -> None:
    """Write a frame in the C-MAPSS text format."""
    df[COLUMNS].to_csv(path, sep=" ", header=False, index=False)


def read_rul(path: Path) -> np.ndarray:
    """A C-MAPSS RUL file: the true RUL at the last cycle of each test unit, in unit order."""
    try:
        with warnings.catch_warnings():
            # An empty file is refused below in words; numpy's own warning would print ahead of them.
            warnings.filterwarnings("ignore", "loadtxt: input contained no data", UserWarning)
            rul = np.loadtxt(path, dtype=float, ndmin=1)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if rul.size == 0:
        raise ValueError(f"{path}: empty, expected one RUL per test unit")
    return rul.astype(int)


def write_rul(rul: np.ndarray, path: Path) -> None:
    """Write one integer RUL per line."""
    np.savetxt(path, np.asarray(rul, dtype=int), fmt="%d")


def make_test_split(
    train_df: pd.DataFrame,
    units: np.ndarray | list[int],
    seed: int,
    *,
    min_cycles: int = 31,
    rul_range: tuple[int, int] = (5, 150),
) -> tuple[pd.DataFrame, np.ndarray]:
    """Cut each run-to-failure unit early, as in the official test files: the true RUL at the cut is drawn
    uniformly from rul_range, keeping at least min_cycles cycles. Returns (test rows, RUL per sorted unit).
    """
    rng = np.random.default_rng(seed)
    units = np.sort(np.asarray(units))
    life = train_df.groupby("unit")["cycle"].max().reindex(units)
    if life.isna().any():
        raise ValueError(f"units not in the data: {list(units[life.isna().to_numpy()])}")
    high = np.minimum(rul_range[1], life.to_numpy() - min_cycles)
    rul = rng.integers(rul_range[0], np.maximum(high, rul_range[0]) + 1)
    rul = np.minimum(rul, life.to_numpy() - 1)
    keep_to = pd.Series(life.to_numpy() - rul, index=units)
    rows = train_df[train_df["unit"].isin(units)]
    test = rows[rows["cycle"] <= rows["unit"].map(keep_to)]
    return test.sort_values(["unit", "cycle"]).reset_index(drop=True), rul.astype(int)


def n_conditions(df: pd.DataFrame) -> int:
    """Number of distinct operating conditions (1 for FD001/FD003, 6 for FD002/FD004)."""
    rounded = df[SETTINGS].round({"setting1": 0, "setting2": 2, "setting3": 0}) + 0.0
    return int(len(rounded.drop_duplicates()))


def cmapss_model(train_df: pd.DataFrame, *, cap: float = 125, seed: int = 0, **params: Any) -> RULRegressor:
    """The RUL model configured for C-MAPSS columns; params override RULRegressor's defaults.

    One boosting thread unless told otherwise: on a small, shared host OpenMP spin-waits make two threads
    several times slower than one.
    """
    params.setdefault("n_threads", 1)
    k = n_conditions(train_df)
    feats = WindowFeatures(
        sensors=SENSORS,
        condition_cols=SETTINGS if k > 1 else (),
        n_conditions=k,
        health_cap=cap,
        random_state=seed,
    )
    return RULRegressor(features=feats, cap=cap, random_state=seed, **params)


def _scores(true_rul: np.ndarray, last: pd.DataFrame, cap: float) -> dict[str, float]:
    """Metrics at the last cycle of each test unit."""
    capped = np.minimum(true_rul, cap)
    out = {
        "rmse": metrics.rmse(capped, last["rul"]),
        "score": metrics.phm08_score(capped, last["rul"]),
        "rmse_raw": metrics.rmse(true_rul, last["rul"]),
        "mae": float(np.mean(np.abs(last["rul"].to_numpy() - capped))),
    }
    if "lower" in last and last["lower"].notna().all():
        out["interval_coverage"] = metrics.coverage(capped, last["lower"], last["upper"])
        out["interval_width"] = float(np.mean(last["upper"] - last["lower"]))
    return out


def evaluate_cmapss(
    train_path: Path, test_path: Path, rul_path: Path, *, cap: float = 125, seed: int = 0, **params: Any
) -> dict[str, Any]:
    """Train on a run-to-failure file, predict the RUL at the last cycle of each test unit, score it."""
    start = time.perf_counter()
    train, test, true_rul = read_cmapss(train_path), read_cmapss(test_path), read_rul(rul_path)
    if len(true_rul) != test["unit"].nunique():
        raise ValueError(f"{rul_path}: {len(true_rul)} values for {test['unit'].nunique()} test units")
    model = cmapss_model(train, cap=cap, seed=seed, **params).fit(train)
    last = model.predict_last(test)
    baseline = MeanRUL(cap=cap).fit(train).predict_last(test)
    out = _scores(true_rul, last, cap)
    out |= {
        "baseline_rmse": metrics.rmse(np.minimum(true_rul, cap), baseline["rul"]),
        "units": int(len(true_rul)),
        "train_units": int(train["unit"].nunique()),
        "cap": cap,
        "seed": seed,
        "seconds": round(time.perf_counter() - start, 2),
    }
    return out


def engine_folds(units: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Units shuffled with the seed and dealt into `folds` disjoint groups."""
    shuffled = np.random.default_rng(seed).permutation(np.unique(units))
    return [np.sort(part) for part in np.array_split(shuffled, folds)]


def cross_validate_cmapss(
    train_path: Path, *, folds: int = 5, cap: float = 125, seed: int = 0, **params: Any
) -> dict[str, Any]:
    """Engine-wise k-fold CV: each validation engine cut at a random cycle and scored at its last one,
    plus the RMSE over every cycle of the full validation engines (capped target)."""
    start = time.perf_counter()
    data = read_cmapss(train_path)
    per_fold = []
    all_true, all_last, all_base = [], [], []
    for k, val_units in enumerate(engine_folds(data["unit"].to_numpy(), folds, seed)):
        tick = time.perf_counter()
        train = data[~data["unit"].isin(val_units)]
        val = data[data["unit"].isin(val_units)]
        test, true_rul = make_test_split(val, val_units, seed + 1000 + k)
        model = cmapss_model(train, cap=cap, seed=seed, **params).fit(train)
        last = model.predict_last(test)
        baseline = MeanRUL(cap=cap).fit(train).predict_last(test)
        every = np.minimum(run_to_failure_rul(val), cap)
        fold = _scores(true_rul, last, cap)
        fold |= {
            "rmse_all_cycles": metrics.rmse(every, model.predict(val)),
            "baseline_rmse": metrics.rmse(np.minimum(true_rul, cap), baseline["rul"]),
            "units": int(len(val_units)),
            "seconds": round(time.perf_counter() - tick, 2),
        }
        per_fold.append(fold)
        all_true.append(true_rul)
        all_last.append(last)
        all_base.append(baseline["rul"].to_numpy())
    true_rul, base = np.concatenate(all_true), np.concatenate(all_base)
    capped = np.minimum(true_rul, cap)
    keys = [k for k in per_fold[0] if k not in ("units", "seconds")]
    mean = {k: float(np.mean([f[k] for f in per_fold])) for k in keys}
    pooled = _scores(true_rul, pd.concat(all_last), cap)
    pooled["score_per_100_units"] = 100.0 * pooled.pop("score") / len(capped)
    pooled["baseline_rmse"] = metrics.rmse(capped, base)
    pooled["rmse_over_baseline"] = pooled["rmse"] / pooled["baseline_rmse"]
    return {
        "folds": per_fold,
        "mean": mean,
        "pooled": pooled,
        "units": int(len(true_rul)),
        "cap": cap,
        "seed": seed,
        "seconds": round(time.perf_counter() - start, 2),
    }
