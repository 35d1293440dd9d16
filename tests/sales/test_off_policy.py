"""Off-policy estimates from logs with propensities: IPS near the truth, doubly robust steadier."""

from __future__ import annotations

import numpy as np

from api.offer_ledger import Entry, doubly_robust_estimate, ips_estimate
from api.offer_policy import Arm, Context

CTX = Context("air_compressor", "valve_leak", 0.7, 100.0, "small", "basic", 5, None, 0, 0)
A, B = Arm("spare_parts_kit", 0, 1000.0, 1000.0), Arm("inspection_visit", 0, 400.0, 400.0)
ACCEPT = {A.key: 0.3, B.key: 0.6}  # true expected revenue: A 300, B 240


def _logs(n: int, seed: int) -> list[Entry]:
    """A uniform logging policy over A and B; each offer is accepted with its true probability."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        arm = (A, B)[rng.integers(2)]
        revenue = arm.price if rng.random() < ACCEPT[arm.key] else 0.0
        out.append(Entry(CTX, arm, 0.5, revenue, (A, B)))
    return out


def always_a(_ctx: Context, _arms) -> np.ndarray:
    return np.array([1.0, 0.0])


def test_ips_lands_near_the_truth_and_a_good_model_makes_doubly_robust_steadier() -> None:
    logs = _logs(4000, seed=1)
    truth = 300.0 * len(logs)
    ips, snips = ips_estimate(logs, always_a)
    assert abs(ips / truth - 1) < 0.08 and abs(snips / truth - 1) < 0.08
    model = lambda _c, _a: np.array([300.0, 240.0])  # noqa: E731 - the true expected revenues
    runs = [_logs(400, seed) for seed in range(40)]
    ips_runs = [ips_estimate(r, always_a)[0] / (300.0 * len(r)) for r in runs]
    dr_runs = [doubly_robust_estimate(r, always_a, model) / (300.0 * len(r)) for r in runs]
    assert np.std(dr_runs) < np.std(ips_runs) and abs(np.mean(dr_runs) - 1) < 0.03
    useless = doubly_robust_estimate(logs, always_a, lambda _c, _a: np.array([0.0, 0.0]))
    assert useless == ips  # with a model that predicts nothing, doubly robust is IPS
