"""`python -m benchmarks.score` runs end to end on a small fleet (a rename once broke it)."""

from __future__ import annotations

import json

from benchmarks import score


def test_the_score_benchmark_scores_every_machine_of_a_small_fleet(capsys) -> None:
    assert score.main(["--machines", "12", "--days", "4", "--train-machines", "15", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scored"] == 12 and sum(result["statuses"].values()) == 12
    assert set(result["versions"]) == {"centrifugal_pump", "air_compressor", "cnc_spindle"}
