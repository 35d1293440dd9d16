"""The one time-to-failure estimate: from a prediction, worded once, never a past time as to come."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api import estimate
from fleet.tables import Prediction

MADE = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def prediction(**fields: object) -> Prediction:
    return Prediction(ts=MADE, risk=0.8, status="ok", **fields)


def test_a_future_estimate_gives_the_expected_time_its_band_and_when_it_was_made() -> None:
    found = estimate.of(prediction(rul_hours=30.0, rul_low=20.0, rul_high=50.0))
    assert found.expected == MADE + timedelta(hours=30)
    assert estimate.words(found, MADE + timedelta(hours=1)) == (
        "failure expected around 2026-11-24 14:00 UTC "
        "(80 % band 2026-11-24 04:00 UTC – 2026-11-25 10:00 UTC; estimated 2026-11-23 08:00 UTC)"
    )


def test_a_past_estimate_says_overdue_since_and_never_a_time_to_come() -> None:
    found = estimate.of(prediction(rul_hours=30.0, rul_low=20.0, rul_high=50.0))
    text = estimate.words(found, MADE + timedelta(hours=31))
    assert text == "overdue since 2026-11-24 14:00 UTC (estimated 2026-11-23 08:00 UTC)"


def test_no_remaining_life_is_no_estimate_and_a_negative_one_is_due_when_made() -> None:
    assert estimate.of(prediction()) is None
    assert estimate.words(None, MADE) == "no failure expected by the model"
    found = estimate.of(prediction(rul_hours=-5.0))
    assert found.expected == MADE and found.overdue(MADE)
