"""The one time-to-failure estimate: from a prediction, worded once, never a past time as to come."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api import estimate
from fleet.tables import Prediction

MADE = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def prediction(**fields: object) -> Prediction:
    return Prediction(**{"ts": MADE, "risk": 0.8, "status": "ok"} | fields)


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


# As a cold start stored it before: the remaining-life model's cap, a band of nothing (nothing failed).
CAP = {"rul_hours": 336.0, "rul_low": 336.0, "rul_high": 336.0}
CROSSING = {
    "eta": MADE + timedelta(hours=30),
    "eta_low": MADE + timedelta(hours=20),
    "eta_high": MADE + timedelta(hours=50),
    "eta_sensor": "vibration_rms_mm_s",
}


def test_a_cold_start_s_estimate_is_its_limit_crossing_never_the_remaining_life_cap() -> None:
    for stored in ({}, CAP):  # as the scorer writes it now, and as older versions stored it
        found = estimate.of(prediction(status="cold_start", **stored, **CROSSING))
        assert found.crossing and found.expected == MADE + timedelta(hours=30)
        assert estimate.words(found, MADE + timedelta(hours=1)) == (
            "limit crossing expected around 2026-11-24 14:00 UTC "
            "(80 % band 2026-11-24 04:00 UTC – 2026-11-25 10:00 UTC; estimated 2026-11-23 08:00 UTC)"
        )
        assert estimate.words(found, MADE + timedelta(hours=1), "de") == (
            "Grenzwertüberschreitung erwartet gegen 2026-11-24 14:00 UTC "
            "(80-%-Band 2026-11-24 04:00 UTC – 2026-11-25 10:00 UTC; geschätzt 2026-11-23 08:00 UTC)"
        )
        assert estimate.words(found, MADE + timedelta(hours=31)) == (
            "limit forecast to be crossed by 2026-11-24 14:00 UTC (estimated 2026-11-23 08:00 UTC)"
        )


def test_a_kind_without_failure_model_and_without_crossing_says_so_not_no_failure() -> None:
    for status in ("cold_start", "fallback"):
        found = estimate.of(prediction(status=status, **CAP))
        assert found is None
        made = estimate.made_by_failure_model(prediction(status=status))
        assert not made
        assert estimate.words(found, MADE, failure_model=made) == "no failure model yet"
        assert estimate.words(found, MADE, "de", failure_model=made) == "noch kein Ausfallmodell"


def test_an_ok_prediction_keeps_its_remaining_life_and_its_words() -> None:
    found = estimate.of(prediction(rul_hours=30.0, rul_low=20.0, rul_high=50.0, **CROSSING))
    assert not found.crossing and found.expected == MADE + timedelta(hours=30)
    assert estimate.words(found, MADE + timedelta(hours=1), "de").startswith("Ausfall erwartet gegen")
    assert estimate.made_by_failure_model(prediction())
    assert estimate.words(estimate.of(prediction()), MADE, "de") == "laut Modell kein Ausfall zu erwarten"
