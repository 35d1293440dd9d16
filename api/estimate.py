"""The one time-to-failure estimate of a prediction, and the one way every page and message words it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fleet import display
from fleet.tables import Prediction


@dataclass(frozen=True, slots=True)
class TimeToFailure:
    """When the failure is expected (remaining useful life from the prediction's time), with its band."""

    made_at: datetime
    expected: datetime
    earliest: datetime | None
    latest: datetime | None

    def overdue(self, now: datetime) -> bool:
        """Whether the expected time has passed: it is then never shown as a time to come."""
        return self.expected <= now


def of(prediction: Prediction | None) -> TimeToFailure | None:
    """The prediction's estimate; None when it carries no remaining life."""
    if prediction is None or prediction.rul_hours is None:
        return None
    made = _utc(prediction.ts)

    def at(hours: float | None) -> datetime | None:
        return None if hours is None else made + timedelta(hours=max(0.0, hours))

    return TimeToFailure(made, at(prediction.rul_hours), at(prediction.rul_low), at(prediction.rul_high))


def stamp(value: datetime) -> str:
    """A time as every estimate shows it: `2026-11-24 08:00 UTC`."""
    return display.when(value)


def band(estimate: TimeToFailure, language: str = "en") -> str:
    """The estimate's 80 % band in words, or "" when the model gave none."""
    if estimate.earliest is None or estimate.latest is None:
        return ""
    return f"{_WORDS[_lang(language)]['band']} {stamp(estimate.earliest)} – {stamp(estimate.latest)}"


def words(estimate: TimeToFailure | None, now: datetime, language: str = "en") -> str:
    """The estimate in one line, the same on every page, in the offer and in the CRM event (en or de)."""
    say = _WORDS[_lang(language)]
    if estimate is None:
        return say["none"]
    made = f"{say['made']} {stamp(estimate.made_at)}"
    if estimate.overdue(now):
        return f"{say['overdue']} {stamp(estimate.expected)} ({made})"
    spread = band(estimate, language)
    return f"{say['expected']} {stamp(estimate.expected)} ({spread + '; ' if spread else ''}{made})"


_WORDS = {
    "en": {
        "none": "no failure expected by the model",
        "made": "estimated",
        "overdue": "overdue since",
        "expected": "failure expected around",
        "band": "80 % band",
    },
    "de": {
        "none": "laut Modell kein Ausfall zu erwarten",
        "made": "geschätzt",
        "overdue": "überfällig seit",
        "expected": "Ausfall erwartet gegen",
        "band": "80-%-Band",
    },
}


def _lang(language: str) -> str:
    return language if language in _WORDS else "en"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
