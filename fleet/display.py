"""How a figure or a time reads to people, one place for every package that writes text someone reads."""

from __future__ import annotations

from datetime import UTC, datetime

# What servicecast did on its own (the policy opening an alert, the router giving up): the audit trail's
# actor name for it, and how pages name it to people.
SYSTEM_ACTOR = "system"
AUTOMATIC = "servicecast (automatic)"
# Where a risk comes from that no failure model made: a cold start's, and one learned from the anomaly score
# alone (the type's failure model is missing or failed); explanations and pages say it so.
NO_FAILURE_HISTORY = "no failure history yet"
READINGS_ALONE = "from its readings alone, no failure model to use"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """A number with its noun as people read it: `1 row`, `0 rows` (`plural` where it is not noun + s)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def percent(value: float | None) -> str:
    """A share or probability as people read it: 0.9 → `90 %`."""
    return "—" if value is None else f"{value * 100:.0f} %"


def signed(value: object) -> str:
    """A contribution with its sign, to two places; one that rounds to zero reads `0.00`, never `-0.00`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    rounded = round(value, 2)
    return f"{rounded:+.2f}" if rounded else "0.00"


def when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time in UTC as pages show it: `2026-12-05 14:34 UTC` (naive times are taken as UTC)."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(fmt) + " UTC"


def to_the_second(value: datetime | None) -> str:
    """A time as `when` gives it with its seconds, and their fraction where there is one, for texts that
    compare times: `2026-12-05 14:34:20 UTC`, `2026-12-05 14:34:20.25 UTC` (two within one second differ)."""
    if value is None or not value.microsecond:
        return when(value, "%Y-%m-%d %H:%M:%S")
    return when(value, f"%Y-%m-%d %H:%M:%S.{value.microsecond:06d}".rstrip("0"))


def unusual(score: float, threshold: float | None = None) -> str:
    """How unlike its machine type's usual ones a machine's readings are, from the anomaly score in [0, 1):
    against the score it alerts from where there is one (a cold start), else on the score's scale."""
    usual = "its machine type's usual ones"
    if threshold is None:
        return f"{score:.2f} of 1 unlike {usual} (anomaly score; 0: as usual)"
    far = "unlike" if score >= threshold else "not far enough to alert from"
    return f"{far} {usual} (anomaly score {score:.2f} of 1; alerts from {threshold:.2f})"


def actor(name: str | None) -> str:
    """Who did something as pages name them: a user's or a tool's name, `servicecast (automatic)` for what
    servicecast did on its own."""
    return AUTOMATIC if name in (None, "", SYSTEM_ACTOR) else name


def printable(text: str) -> str:
    """Text from a device or a file as one safe terminal field: control and format characters as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
