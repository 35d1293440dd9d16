"""The one time-to-failure estimate of a prediction, and the one way every page and message words it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fleet import display
from fleet.tables import Prediction
from models import statuses


@dataclass(frozen=True, slots=True)
class TimeToFailure:
    """When the failure is expected (remaining useful life from the prediction's time), with its band; or,
    for a prediction without a failure model's remaining life, when a sensor's trend crosses its limit."""

    made_at: datetime
    expected: datetime
    earliest: datetime | None
    latest: datetime | None
    crossing: bool = False  # the time is the trend forecast's limit crossing, not a remaining life

    def overdue(self, now: datetime) -> bool:
        """Whether the expected time has passed: it is then never shown as a time to come."""
        return self.expected <= now


def made_by_failure_model(prediction: Prediction) -> bool:
    """Whether a failure model made the prediction's risk: only then is its remaining life one (a cold start
    or readings-alone row an older version stored carries the RUL model's cap: it is not read)."""
    return prediction.status not in statuses.NO_FAILURE_MODEL


def remaining_life(prediction: Prediction) -> tuple[float | None, float | None, float | None]:
    """The prediction's remaining life in hours with its 80 % band, as every page, alert and API answer
    reads it: none unless a failure model made the risk (`made_by_failure_model`)."""
    if not made_by_failure_model(prediction):
        return None, None, None
    return prediction.rul_hours, prediction.rul_low, prediction.rul_high


def of(prediction: Prediction | None) -> TimeToFailure | None:
    """The prediction's estimate: its remaining life, else its limit crossing; None without either."""
    if prediction is None:
        return None
    made = _utc(prediction.ts)
    hours, low, high = remaining_life(prediction)
    if hours is not None:

        def at(hours: float | None) -> datetime | None:
            return None if hours is None else made + timedelta(hours=max(0.0, hours))

        return TimeToFailure(made, at(hours), at(low), at(high))
    if prediction.eta is None:
        return None
    low, high = (None if t is None else _utc(t) for t in (prediction.eta_low, prediction.eta_high))
    return TimeToFailure(made, _utc(prediction.eta), low, high, crossing=True)


def stamp(value: datetime) -> str:
    """A time as every estimate shows it: `2026-11-24 08:00 UTC`."""
    return display.when(value)


def band(estimate: TimeToFailure, language: str = "en") -> str:
    """The estimate's 80 % band in words, or "" when the model gave none."""
    if estimate.earliest is None or estimate.latest is None:
        return ""
    return f"{_WORDS[_lang(language)]['band']} {stamp(estimate.earliest)} – {stamp(estimate.latest)}"


def words(
    estimate: TimeToFailure | None, now: datetime, language: str = "en", *, failure_model: bool = True
) -> str:
    """The estimate in one line, the same on every page, in the offer and in the CRM event (en or de);
    without one, `failure_model` (`made_by_failure_model`) tells a model's "no failure" from no model."""
    say = _WORDS[_lang(language)]
    if estimate is None:
        return say["none"] if failure_model else say["no_model"]
    made = f"{say['made']} {stamp(estimate.made_at)}"
    kind = "crossing_" if estimate.crossing else ""
    if estimate.overdue(now):
        return f"{say[kind + 'overdue']} {stamp(estimate.expected)} ({made})"
    spread = band(estimate, language)
    return f"{say[kind + 'expected']} {stamp(estimate.expected)} ({spread + '; ' if spread else ''}{made})"


def words_of(prediction: Prediction, now: datetime, language: str = "en") -> str:
    """The prediction's estimate in `words`, telling a failure model's "no failure" from no failure model."""
    return words(of(prediction), now, language, failure_model=made_by_failure_model(prediction))


_WORDS = {
    "en": {
        "none": "no failure expected by the model",
        "no_model": "no failure model yet",
        "made": "estimated",
        "overdue": "overdue since",
        "expected": "failure expected around",
        "crossing_overdue": "limit forecast to be crossed by",
        "crossing_expected": "limit crossing expected around",
        "band": "80 % band",
    },
    "de": {
        "none": "laut Modell kein Ausfall zu erwarten",
        "no_model": "noch kein Ausfallmodell",
        "made": "geschätzt",
        "overdue": "überfällig seit",
        "expected": "Ausfall erwartet gegen",
        "crossing_overdue": "Grenzwertüberschreitung vorhergesagt bis",
        "crossing_expected": "Grenzwertüberschreitung erwartet gegen",
        "band": "80-%-Band",
    },
}


def _lang(language: str) -> str:
    return language if language in _WORDS else "en"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
