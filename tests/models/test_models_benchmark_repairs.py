"""`python -m benchmarks.models --repairs --review-every N`: the options' path on a tiny fleet."""

from __future__ import annotations

import dataclasses
import json

import pytest

from benchmarks import models
from tests.models.fleet_support import REVIEW_FAST

ARM_FIGURES = {
    "precision",
    "precision_judged",
    "judged_alerts",
    "recall_precursor_24h",
    "false_alarms_per_machine_month",
    "alerts",
}


@pytest.mark.slow
def test_repairs_with_a_review_period_retrain_every_period_and_report_four_arms_of_the_new_world() -> None:
    argv = "--machines 8 --days 32 --train-days 24 --review-days 8 --review-every 4 --repairs --seed 2 --json"
    args = models.argument_parser().parse_args(argv.split())
    # One machine type failing often: the few machines fail enough for alerts and repairs in 8 days.
    config = dataclasses.replace(
        models.fleet_config(args), type_mix=(("centrifugal_pump", 1.0),), failure_rate=20.0
    )
    report = models.measure(args, {**models.model_params(args), **REVIEW_FAST}, config=config)
    printed = json.loads(models.render(report, as_json=True))
    found = printed["findings"]

    assert printed["repairs"] is True and found["review_every"] == 4.0
    # A review model every 4 days of the 8 reviewed: two, where one review would train one.
    assert found["review_models"] == 2
    # The technicians' visits replaced worn parts: the world simulated again from them fails less.
    assert found["replaced_before_failure"] >= 1
    assert found["failures_with_repairs"] < found["failures_without_repairs"]
    assert found["alerts_visited"] <= found["alerts_reviewed"]
    # The four arms, each with its alerting figures and thresholds, and the differences between them.
    for arm in ("before_labels_only", "before", "after", "after_no_fault_only"):
        assert set(found[arm]) == ARM_FIGURES
    assert set(found["thresholds_before"]) == set(found["thresholds_after"]) == {"centrifugal_pump"}
    assert (
        set(found["thresholds_no_fault_only"])
        == set(found["thresholds_before_labels_only"])
        == {"centrifugal_pump"}
    )
    arms = report["findings"]
    for key, arm in (("precision_delta", "after"), ("precision_delta_no_fault_only", "after_no_fault_only")):
        before, after = arms["before"]["precision"], arms[arm]["precision"]
        assert arms[key] == (None if None in (before, after) else after - before)
    assert "findings_paired" not in printed


def test_a_review_capacity_needs_the_repair_world() -> None:
    with pytest.raises(SystemExit) as stop:
        models.main(["--review-capacity", "1", "--json"])
    assert stop.value.code == 2


@pytest.mark.slow
def test_a_review_capacity_bounds_the_alerts_the_repair_worlds_review_opens() -> None:
    argv = (
        "--machines 8 --days 32 --train-days 24 --review-days 8 --repairs --review-capacity 3 --seed 2 --json"
    )
    args = models.argument_parser().parse_args(argv.split())
    config = dataclasses.replace(
        models.fleet_config(args), type_mix=(("centrifugal_pump", 1.0),), failure_rate=20.0
    )
    # The fast models, alerting at their lowest notch: without the capacity far more than 6 alerts open.
    params = {**models.model_params(args), **REVIEW_FAST}
    found = json.loads(models.render(models.measure(args, params, config=config), as_json=True))["findings"]
    # 8 pumps at 3 visits a machine-month over 8 days: 6 whole visits in all.
    assert found["capacity"] == 3.0 and 1 <= found["alerts_reviewed"] <= 6
    assert found["alerts_visited"] <= found["alerts_reviewed"]
