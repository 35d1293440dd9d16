"""RUL model on NASA C-MAPSS FD001: engine-wise k-fold CV, each validation engine cut at a random cycle
and scored at its last one (RUL capped at 125), next to a constant-mean baseline measured in the same run.

python -m benchmarks.cmapss --json [--train PATH] [--folds 5] [--seed 0] [--cap 125] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.report import round_floats
from models.cmapss import cross_validate_cmapss

DEFAULT_TRAIN = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cmapss" / "train_FD001.txt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=DEFAULT_TRAIN, help="C-MAPSS training file")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cap", type=float, default=125.0)
    parser.add_argument("--threads", type=int, default=None, help="OpenMP threads for boosting (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not args.train.exists():
        parser.error(f"training file not found: {args.train}")

    threads = {} if args.threads is None else {"n_threads": args.threads}
    result = cross_validate_cmapss(args.train, folds=args.folds, cap=args.cap, seed=args.seed, **threads)
    report = {
        "benchmark": "cmapss",
        "train": str(args.train.resolve()),
        "protocol": f"{args.folds}-fold engine-wise CV, validation engines cut at a random cycle, "
        f"RUL capped at {args.cap:g}",
        "rmse_per_fold": [f["rmse"] for f in result["folds"]],
        "rmse_mean": result["mean"]["rmse"],
        "rmse_pooled": result["pooled"]["rmse"],
        "rmse_raw_mean": result["mean"]["rmse_raw"],
        "rmse_all_cycles_per_fold": [f["rmse_all_cycles"] for f in result["folds"]],
        "rmse_all_cycles_mean": result["mean"]["rmse_all_cycles"],
        "score_per_fold": [f["score"] for f in result["folds"]],
        "score_per_100_units": result["pooled"]["score_per_100_units"],
        "interval_coverage": result["pooled"].get("interval_coverage"),
        "interval_width": result["pooled"].get("interval_width"),
        "baseline_rmse": result["pooled"]["baseline_rmse"],
        "rmse_over_baseline": result["pooled"]["rmse_over_baseline"],
        "units": result["units"],
        "seed": args.seed,
        "threads": args.threads or 1,
        "seconds": result["seconds"],
        "seconds_per_fold": [f["seconds"] for f in result["folds"]],
    }
    report = round_floats(report, 3)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>26}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
