"""The simulated year through the CLI and the market benchmark at a small size (keys and consistency)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from benchmarks import market as bench
from servicecast.cli import app


def test_simulate_market_runs_a_year_and_counts_every_stage() -> None:
    result = CliRunner().invoke(
        app, ["simulate", "market", "--machines", "80", "--customers", "10", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["alerts"] > 0 and sum(out["findings"].values()) > 0
    assert (
        out["offers_proposed"]
        == out["offers_sent"] + out["offers_withdrawn_no_fault"] + out["offers_unsent_at_year_end"]
    )
    assert out["offers_accepted"] <= out["offers_sent"] and out["revenue"] >= 0


def test_the_benchmark_prints_the_promised_keys(tmp_path) -> None:
    png = tmp_path / "market.png"
    out = bench.run((1, 2), machines=60, customers=8, png=png)
    for key in ("uplift", "uplift_ci95", "seeds", "learning_revenue", "static_revenue", "ope_estimate"):
        assert key in out
    assert out["seeds"] == [1, 2] and png.stat().st_size > 1000
    assert out["uplift_ci95"][0] <= out["uplift"] <= out["uplift_ci95"][1]


def test_the_benchmark_gives_the_same_figures_with_seeds_run_in_processes() -> None:
    one = bench.run((3, 4), machines=60, customers=8, png=None)
    two = bench.run((3, 4), machines=60, customers=8, png=None, jobs=2)
    assert two == one and two["seeds"] == [3, 4]
