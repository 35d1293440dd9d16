"""The rules of a type's `training:` block (how `servicecast train` trains the type), checked by the types
file's `Checker` so a typo there has its line and field like the rest of the file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleet.type_checks import Checker, Path_

YEAR_HOURS = 8760.0
# Each number's bounds (low, high, whether low itself is allowed) and what they mean, in the file's words.
NUMBERS = {
    "horizon_hours": (0.0, YEAR_HOURS, False, "hours ahead a risk is of failing (above 0, at most a year)"),
    "min_lead_hours": (0.0, YEAR_HOURS, True, "hours ahead an alert counts as in time (0 or more)"),
    "min_history_hours": (0.0, YEAR_HOURS, True, "hours of readings before a machine is scored (0 or more)"),
    "precision_target": (0.0, 1.0, False, "share of training alerts that are right (above 0, at most 1)"),
    "max_false_alarms": (0.0, float("inf"), True, "false training alerts per machine-month (0 or more)"),
}
SWITCHES = ("events", "extremes", "part_evidence")
KEYS = set(NUMBERS) | set(SWITCHES)


def check(c: Checker, path: Path_, block: Any) -> None:
    """Every problem of one type's training block: known keys, numbers in range, switches true or false."""
    if not c.mapping(path, block, KEYS, required=()):
        return
    numbers = {}
    for key, (low, high, low_ok, meaning) in NUMBERS.items():
        if key not in block or not c.number(path + (key,), value := block[key]):
            continue
        if value < low or (value == low and not low_ok) or value > high:
            c.bad(path + (key,), f"{value} is out of range: {meaning}")
        numbers[key] = value
    for key in SWITCHES:
        if key in block and not isinstance(block[key], bool):
            c.bad(path + (key,), f"{block[key]!r} must be true or false")
    horizon, lead = numbers.get("horizon_hours"), numbers.get("min_lead_hours")
    if horizon is not None and lead is not None and lead >= horizon:
        c.bad(path + ("min_lead_hours",), f"{lead} must be below horizon_hours {horizon}: no alert counts")
