"""`python -m benchmarks.azure_pdm --data DIR --json`: the product against a pinned reference, Azure PdM.

Onboards DIR into a fresh SQLite store through the product's imports (`benchmarks.azure_onboard`), then per
fold of machines: `train_from_store` (what `servicecast train` runs) on the training machines, with the
settings the types file gives the type (docs/examples/azure_pdm/types.yaml, `training:`), and the held-out
machines' whole window scored at every hour by the registered version (`FleetModel.risk_rows`, the backtest
path that the threshold-replay test holds equal to the live scorer and policy) at its own trained
threshold. An alerting hour counts for every failure mode the version's mode model names
(`models.modes.likely`, the rule by which a live prediction's `likely_modes` and its alert name them). The
reference (`benchmarks.azure_reference`) runs on the same folds; both are scored by `benchmarks.azure_scores`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select

from benchmarks import azure_onboard, azure_reference, azure_scores
from fleet import errors
from fleet.db import make_engine
from fleet.migrate import ensure_schema
from fleet.tables import Machine
from models import event_features, modes, training, versions

FOLDS = 5


def folds(machines: list[str], k: int, holdout: list[str] | None) -> list[list[str]]:
    """Held-out machine sets: the given ones, or a seeded machine-wise k-fold split."""
    if holdout:
        unknown = sorted(set(holdout) - set(machines))
        if unknown:
            raise errors.InvalidInput(f"--holdout-machines {','.join(unknown)}: not in the data")
        return [holdout]
    order = np.random.default_rng(0).permutation(sorted(machines, key=int))
    k = min(k, len(machines))
    return [sorted(order[i::k].tolist(), key=int) for i in range(k)]


def product_alerts(engine, ids: dict[str, int], train: list[str], test: list[str]) -> pd.DataFrame:  # noqa: ANN001
    """Train on `train` through the product, return the held-out machines' alerts (machine, component, ts)."""
    report = training.train_from_store(engine, machine_ids=[ids[m] for m in train], force=True)
    if not report.versions:
        raise errors.InvalidInput("training registered no version (no telemetry or labels on the machines)")
    parts = []
    for mtype, version in report.versions.items():
        model = versions.load(engine, version)
        if getattr(model, "classifier_", None) is None:  # cold start: no failure model to score
            continue
        panel = training.read_type_panel(engine, [ids[m] for m in test]).assign(machine_type=mtype)
        with engine.connect() as conn:
            panel = event_features.add(conn, panel, model.features_.extras_)
        risk, _ = model.risk_rows(panel)
        alerting = np.nan_to_num(risk, nan=-1.0) >= model.threshold_
        named = modes.likely(model.classifier_.mode_shares_table(model.features_.transform(panel)))
        for comp in named.columns:
            rows = alerting & named[comp].to_numpy()
            parts.append(
                pd.DataFrame(
                    {
                        "machine": panel["machine"].astype(str)[rows],
                        "component": comp,
                        "ts": panel["ts"][rows],
                    }
                )
            )
    if not parts:
        return pd.DataFrame(columns=["machine", "component", "ts"])
    alerts = pd.concat(parts, ignore_index=True)
    codes = {str(i): m for m, i in ids.items()}
    return alerts.assign(machine=alerts["machine"].map(codes))


def run(data: Path, *, holdout: list[str] | None = None, k: int = FOLDS, db: str | None = None) -> dict:
    """Onboard `data`, evaluate the product and the reference on the same folds; the figures as a dict."""
    started = time.perf_counter()
    files = azure_onboard.files(data)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(db or f"sqlite:///{tmp}/azure.db")
        ensure_schema(engine)
        onboarded = azure_onboard.onboard(engine, data)
        with engine.connect() as conn:
            ids = {code: i for code, i in conn.execute(select(Machine.code, Machine.id)).all()}
        rows, features, comps = azure_reference.table(files)
        failures = pd.read_csv(files["failures"]).rename(
            columns={"machineID": "machine", "failure": "component", "datetime": "ts"}
        )
        failures["machine"] = failures["machine"].astype(str)
        span_days = (rows["datetime"].max() - rows["datetime"].min()).total_seconds() / 86400 + 1 / 24
        product, reference, tested = [], [], []
        for test in folds(list(ids), k, holdout):
            train = [m for m in ids if m not in test]
            product.append(product_alerts(engine, ids, train, test))
            reference.append(
                azure_reference.alert_hours(
                    rows, features, comps, {int(m) for m in train}, {int(m) for m in test}
                )
            )
            tested += test
        engine.dispose()
    months = len(tested) * span_days / 30.0
    f = failures[failures["machine"].isin(tested)]
    out = azure_scores.score(azure_scores.episodes(pd.concat(product)), f, comps, months)
    out["reference"] = azure_scores.score(azure_scores.episodes(pd.concat(reference)), f, comps, months)
    out["folds"] = k if not holdout else 1
    out["machines_tested"] = len(tested)
    out["onboarded"] = onboarded.__dict__
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def _line(name: str, fig: dict) -> str:
    def fmt(v: object) -> str:
        return "—" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)

    keys = ("failures", "caught", "recall", "episodes", "episode_precision", "f1", "median_lead_h")
    keys += ("false_alarms_per_machine_month",)
    return f"{name:8s} " + " ".join(f"{k}={fmt(fig[k])}" for k in keys)


def main(argv: list[str] | None = None) -> int:
    """Command line: figures as text, or one JSON object with --json."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.azure_pdm", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data/azure_pdm"))
    parser.add_argument("--holdout-machines", help="comma-separated machine ids to test on (else k-fold)")
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    holdout = [m.strip() for m in args.holdout_machines.split(",")] if args.holdout_machines else None
    try:
        result = run(args.data, holdout=holdout, k=args.folds)
    except errors.ServicecastError as exc:
        print(f"cannot run the Azure benchmark: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for side, figs in (("product", result), ("reference", result["reference"])):
        print(f"{side}: " + _line("overall", figs["overall"]))
        for comp, fig in figs["per_component"].items():
            print("  " + _line(comp, fig))
    print(f"{result['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
