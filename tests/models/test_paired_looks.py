"""The pooled paired test over `benchmarks.models` reports made in chunks."""

import json
import math

import pytest

from benchmarks import paired_looks
from benchmarks.findings_arms import REPAIR_KEYS


def report(path, deltas: dict[int, float | None]):
    """A `benchmarks.models --repairs --pairs` report holding `deltas` as each seed's precision_delta."""
    pairs = [{"seed": s, **{k: 0.0 for k in REPAIR_KEYS}, "precision_delta": d} for s, d in deltas.items()]
    path.write_text(json.dumps({"findings_paired": {"pairs": pairs}}))
    return path


def test_the_chunks_pool_into_one_one_sided_t_bound(tmp_path, capsys):
    files = [report(tmp_path / "a.json", {10: 0.1, 11: 0.2}), report(tmp_path / "b.json", {12: 0.3})]
    assert paired_looks.main([str(f) for f in files] + ["--seeds", "10-12", "--alpha", "0.05"]) == 0
    decision = json.loads(capsys.readouterr().out)["decision"]
    # mean 0.2, sd 0.1; t(0.95, 2 df) = 2.919986
    assert decision["pairs"] == 3
    assert decision["mean"] == pytest.approx(0.2)
    assert decision["lower_bound"] == pytest.approx(0.2 - 2.919986 * 0.1 / math.sqrt(3), abs=1e-6)
    assert decision["shown"] is True


def test_a_stricter_level_can_refuse_what_a_looser_one_shows(tmp_path):
    pairs = paired_looks.collect([report(tmp_path / "a.json", {1: 0.1, 2: 0.2, 3: 0.3})])
    assert paired_looks.pooled(pairs, [1, 2, 3], "precision_delta", 0.05)["decision"]["shown"] is True
    assert paired_looks.pooled(pairs, [1, 2, 3], "precision_delta", 0.01)["decision"]["shown"] is False


def test_a_missing_or_extra_seed_is_refused(tmp_path, capsys):
    f = report(tmp_path / "a.json", {10: 0.1, 11: 0.2, 13: 0.3})
    assert paired_looks.main([str(f), "--seeds", "10-12", "--alpha", "0.05"]) == 2
    assert "missing [12], extra [13]" in capsys.readouterr().err


def test_a_seed_in_two_reports_is_refused(tmp_path, capsys):
    files = [report(tmp_path / "a.json", {10: 0.1, 11: 0.2}), report(tmp_path / "b.json", {11: 0.3})]
    assert paired_looks.main([str(f) for f in files] + ["--seeds", "10-11", "--alpha", "0.05"]) == 2
    assert "seed 11 is in more than one pair" in capsys.readouterr().err


def test_an_undefined_difference_is_named_and_left_out(tmp_path):
    pairs = paired_looks.collect([report(tmp_path / "a.json", {1: 0.1, 2: None, 3: 0.3, 4: 0.2})])
    result = paired_looks.pooled(pairs, [1, 2, 3, 4], "precision_delta", 0.05)
    assert result["undefined"] == [2]
    assert result["decision"]["pairs"] == 3
