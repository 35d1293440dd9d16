"""One pre-registered paired test pooled from `benchmarks.models --pairs` runs made in chunks.

python -m benchmarks.paired_looks FILE... --seeds 210-269 --alpha 0.0041667 [--key precision_delta]

Each FILE is the `--json` report of one `benchmarks.models --repairs --pairs N` run. The seeds found must be
exactly `--seeds`, each once, or it refuses. The decision: the mean of `--key` over the pairs is > 0 and the
lower bound of its one-sided `1 - alpha` t interval is > 0. Every other paired key is summarised as the
benchmark does (95 % t and bootstrap intervals), reported, deciding nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from benchmarks.findings import paired_summary
from benchmarks.findings_arms import REPAIR_KEYS


def seed_range(text: str) -> list[int]:
    """`210-269` → 210 … 269."""
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def collect(paths: list[Path]) -> dict[int, dict]:
    """Each pair of the reports at `paths` by its seed; a seed met twice is an error."""
    pairs: dict[int, dict] = {}
    for path in paths:
        report = json.loads(path.read_text())
        for pair in report["findings_paired"]["pairs"]:
            if pair["seed"] in pairs:
                raise ValueError(f"seed {pair['seed']} is in more than one pair ({path})")
            pairs[pair["seed"]] = pair
    return pairs


def decide(deltas: list[float], alpha: float) -> dict:
    """The mean and its one-sided `1 - alpha` t lower bound; shown when both are > 0."""
    d = np.asarray(deltas, dtype=float)
    mean = float(d.mean())
    lower = mean - float(stats.t.ppf(1 - alpha, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return {
        "pairs": len(d),
        "mean": mean,
        "sd": float(d.std(ddof=1)),
        "alpha_one_sided": alpha,
        "lower_bound": lower,
        "shown": mean > 0 and lower > 0,
    }


def pooled(pairs: dict[int, dict], seeds: list[int], key: str, alpha: float) -> dict:
    """The decision on `key` over `seeds` and every paired key's summary; refuses a wrong seed set."""
    missing = sorted(set(seeds) - set(pairs))
    extra = sorted(set(pairs) - set(seeds))
    if missing or extra:
        raise ValueError(
            f"the reports' seeds are not the pre-registered ones: missing {missing}, extra {extra}"
        )
    undefined = [s for s in seeds if pairs[s][key] is None]
    deltas = [pairs[s][key] for s in seeds if pairs[s][key] is not None]
    return {
        "key": key,
        "seeds": [seeds[0], seeds[-1]],
        "undefined": undefined,
        "decision": decide(deltas, alpha),
        "reported": {k: paired_summary([pairs[s].get(k) for s in seeds]) for k in REPAIR_KEYS},
    }


def main(argv: list[str] | None = None) -> int:
    """Print the pooled test of the reports given, as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--seeds", required=True, type=seed_range)
    parser.add_argument("--alpha", required=True, type=float, help="one-sided level of the decision")
    parser.add_argument("--key", default="precision_delta")
    args = parser.parse_args(argv)
    try:
        result = pooled(collect(args.reports), args.seeds, args.key, args.alpha)
    except (ValueError, KeyError, OSError) as exc:
        print(f"paired_looks: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
