"""Training's false-alarm bound on the threshold: `train_type` hands it to `choose_threshold`, records it."""

from __future__ import annotations

from models.training import choose_threshold, train_type
from tests.models.fleet_support import FAST, fleet, pump_data, pump_model


def test_the_false_alarm_bound_given_to_training_picks_the_threshold() -> None:
    run = fleet()
    panel, _ = pump_data()
    same_fit = pump_model()  # what train_type fits on the same rows with the same settings
    bounds = (0.5, 10.0)  # few training false alarms allowed; any number allowed
    # No precision target: the bound alone decides (on this small, quickly fitted fleet no notch's honest
    # out-of-fold alerts reach 0.85 precision, so with the default target both bounds fell back to best F1).
    expected = {
        b: choose_threshold(
            same_fit, panel, run.failures, run.maintenance, min_precision=0.0, max_false_alarms=b
        )[0]
        for b in bounds
    }
    assert expected[0.5] != expected[10.0]  # a fleet where the bound decides
    for b in bounds:
        model, metrics = train_type(
            panel, run.failures, run.maintenance, precision_target=0.0, max_false_alarms=b, **FAST
        )
        assert model.threshold_ == metrics["threshold"] == expected[b]
        assert metrics["max_false_alarms"] == b
