"""The OEM's warning and alarm limits of a type's sensors: which readings are beyond them, and in words.

A reading beyond the OEM's alarm limit (the machine builder's hard limit) is a risk of `ALARM_RISK`
whatever a model says; a cold-start model also alerts at the warning limit (`WARNING_RISK`). A limit counts
once the machine's readings have stayed beyond it for the sensor's on-delay (ISA-18.2; `ON_DELAY_S` unless
the type gives `alarm_on_delay_s`): a single sample is not a process state (a spike of a faulty sensor).
A message without a sensor's reading (a sensor sent apart, or one dropping out) reads the machine's last
reading of it while that is at most `time_base.HOLD` of the machine's usual interval between messages old
(the features' hold), and at least `hold_seconds` (the hold at the type's step: a machine at its type's
rate holds as at that step, a slower one through its own silence); an older one is missing. A carried
reading says what it said when read: the on-delay counts time between readings, so a spike followed by
silence is still one sample. Both paths, every row (backtests) and each machine's latest (the scorer),
read the readings so carried: a replay of a window through the scorer opens the alerts a backtest counted."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from fleet.machine_types import SensorSpec
from models import time_base

ALARM_RISK, WARNING_RISK = 1.0, 0.9
ALARM = (("alarm", ALARM_RISK),)
WARNING_AND_ALARM = (("warning", WARNING_RISK), ("alarm", ALARM_RISK))
# ISA-18.2's and EEMUA 191's suggested on-delay for temperature and level; at most one reading per minute
# it asks for two readings in a row.
ON_DELAY_S = 60.0
# A machine's usual interval is the median of its intervals in the day before a row (at most the
# `time_base.RATE_READINGS` latest readings'), so a reading is carried for 36 h at most: the scorer's read
# (`scoring.history_hours`, a baseline day, a window and more: over two days at hourly steps) holds the
# intervals and the reading a backtest reads at a machine's newest row.
USUAL_WITHIN_S = 24 * 3600.0


def hold_seconds(step_hours: float) -> float:
    """How long a sensor's last reading stands for a message without it at a machine sending at the type's
    step: the bound the features hold a reading into later steps by (`time_base.HOLD` of the interval)."""
    return time_base.HOLD * step_hours * 3600.0


def limits_of(specs: Mapping[str, SensorSpec]) -> dict[str, dict]:
    """The warning and alarm limits of sensor specs that give one, per sensor."""
    return {
        name: {
            "warning": s.warning,
            "alarm": s.alarm,
            "bad": s.bad or "high",
            "on_delay_s": ON_DELAY_S if s.alarm_on_delay_s is None else s.alarm_on_delay_s,
        }
        for name, s in specs.items()
        if s.warning is not None or s.alarm is not None
    }


def beyond(
    values: pd.DataFrame,
    limits: Mapping[str, dict],
    levels: tuple[tuple[str, float], ...] = ALARM,
    *,
    machine: str = "machine",
    ts: str = "ts",
    hold_s: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the risk of the highest of `levels` its machine's readings (carried for `hold_s`, longer at a
    machine slower than that: `_carry`) have held beyond for the on-delay (0 if none), that sensor and the
    seconds they have been beyond. A missing reading neither holds nor breaks a spell. `hold_s` has no
    default (0 carries none): a caller that forgot it would read a sensor sent apart as missing. For
    backtests; the scorer asks `beyond_latest`, the same at each machine's latest row."""
    found = _rules(values, limits, levels)
    out = _nothing(len(values))
    if not found:
        return out
    codes = pd.factorize(values[machine].astype(str).to_numpy(), sort=True)[0]
    stamps = _stamps(values[ts])
    by_time = np.lexsort((stamps, codes))
    t = stamps / 1e9
    new = np.r_[True, codes[by_time][1:] != codes[by_time][:-1]] if len(by_time) else np.zeros(0, bool)
    for name, readings, rules in found:
        x, read = np.empty_like(readings), np.empty_like(t)
        x[by_time], read[by_time] = _carry(readings[by_time], new, t[by_time], hold_s)
        order = by_time[~np.isnan(x[by_time])]
        if not len(order):  # not one reading of the sensor in the frame
            continue
        for over, level, delay in rules:
            span = read - _spells(over(x), codes, t, order)  # NaN where not beyond
            _keep(out, name, level, span >= delay, span)
    return out


def beyond_latest(
    values: pd.DataFrame,
    limits: Mapping[str, dict],
    levels: tuple[tuple[str, float], ...] = ALARM,
    *,
    order: np.ndarray,
    last: np.ndarray,
    ts: str = "ts",
    hold_s: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`beyond` at each machine's latest row, one row per machine, from the spell that row is in alone.

    `order` lists the rows of `values` sorted by machine and time, `last` the sorted position of each
    machine's latest row (as `FleetFeatures.prepare` gives them). Each spell is walked back from the latest
    row to the last reading before it not beyond the limit, so the work follows the machines beyond a limit
    and how long they have been, not the frame.
    """
    found = _rules(values, limits, levels)
    out = _nothing(len(last))
    if not found or not len(last):
        return out
    first, new, t_sorted = _by_machine(values[ts], order, last)
    for name, readings, rules in found:
        x, read = _carry(readings[order], new, t_sorted, hold_s)  # by sorted position from here on
        valid = ~np.isnan(x)
        for over, level, delay in rules:
            now = np.flatnonzero(over(x[last]))  # the machines beyond at their latest row
            if not now.size:
                continue
            _, since = _back(
                first[now],
                last[now],
                lambda p, x=x, over=over, valid=valid: valid[p] & ~over(x[p]),
                lambda p, valid=valid: valid[p],
            )
            t = np.r_[read[last[now]], t_sorted[since]]
            span = np.full(len(last), np.nan)
            span[now] = t[: now.size] - t[now.size :]
            _keep(out, name, level, span >= delay, span)
    return out


def last_read(
    values: pd.DataFrame, sensor: str, *, order: np.ndarray, last: np.ndarray, ts: str = "ts", hold_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per machine (`order` and `last` as `beyond_latest` takes them), its last reading of `sensor` (NaN if
    none), how many seconds before its latest row it was read, and whether the limit check still reads it
    there (`_carry`): an older reading is no longer the machine's reading now."""
    if not len(last):
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)
    first, new, t = _by_machine(values[ts], order, last)
    x = values[sensor].to_numpy(dtype=float)[order] if sensor in values else np.full(len(order), np.nan)
    carried, _ = _carry(x, new, t, hold_s)
    src = np.maximum.accumulate(np.where(np.isnan(x), -1, np.arange(len(x))))[last]
    has = src >= first  # never another machine's reading
    at = np.where(has, src, 0)
    return np.where(has, x[at], np.nan), np.where(has, t[last] - t[at], np.nan), ~np.isnan(carried[last])


Rule = tuple[Callable[[np.ndarray], np.ndarray], float, float]


def _rules(
    values: pd.DataFrame, limits: Mapping[str, dict], levels: tuple[tuple[str, float], ...]
) -> list[tuple[str, np.ndarray, list[Rule]]]:
    """The limit rule, stated once for both paths: per sensor of `values` with a limit among `levels`, its
    readings and, per level, which readings are beyond it (at the limit is beyond, a missing reading is
    not), the level's risk and the sensor's on-delay in seconds."""
    found = []
    for name, limit in limits.items():
        if name not in values:
            continue
        sign = -1.0 if limit.get("bad") == "low" else 1.0
        delay = float(limit.get("on_delay_s", 0.0))
        rules = [
            (lambda x, at=float(limit[key]), sign=sign: sign * (x - at) >= 0, level, delay)
            for key, level in levels
            if limit.get(key) is not None
        ]
        if rules:
            found.append((name, values[name].to_numpy(dtype=float), rules))
    return found


def _by_machine(stamps: pd.Series, order: np.ndarray, last: np.ndarray) -> tuple:
    """Rows in `order` (by machine and time, `last` each machine's last position): each machine's first
    position, a mask of those, and the times in seconds."""
    first = np.r_[0, last[:-1] + 1]
    new = np.zeros(len(order), dtype=bool)
    new[first] = True
    return first, new, _stamps(stamps)[order] / 1e9


def _carry(x: np.ndarray, new: np.ndarray, t: np.ndarray, hold_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Readings `x` by machine and time (`new` where a machine begins, `t` in seconds), each missing one the
    machine's last reading if that is at most `time_base.HOLD` of the machine's usual interval there, and
    at least `hold_s` (0: none), older (never another machine's), and when each was read: a carried
    reading says what it said then, and does not stretch a spell."""
    if hold_s <= 0 or not len(x):
        return x, t
    pos = np.arange(len(x))
    src = np.maximum.accumulate(np.where(np.isnan(x), -1, pos))
    begins = np.maximum.accumulate(np.where(new, pos, 0))
    gap = np.flatnonzero(np.isnan(x) & (src >= begins))  # only these rows can take a reading
    age = t[gap] - t[src[gap]]
    take = np.zeros(len(x), dtype=bool)
    take[gap] = age <= hold_s
    longer = ~take[gap]  # only these need the machine's own interval
    take[gap[longer]] = age[longer] <= time_base.HOLD * _usual_s(gap[longer], begins, t)
    src_ok = np.maximum(src, 0)
    return np.where(take, x[src_ok], x), np.where(take, t[src_ok], t)


def _usual_s(rows: np.ndarray, begins: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per row in `rows` (of rows by machine and time, `begins` each row's machine's first, `t` seconds),
    the median of its machine's intervals between rows, up to it, within `USUAL_WITHIN_S` and at most the
    `time_base.RATE_READINGS` latest rows' (NaN without one); repeated times are no interval."""
    later = rows[:, None] - np.arange(time_base.RATE_READINGS - 1)
    earlier = np.maximum(later - 1, 0)
    gap = t[np.maximum(later, 0)] - t[earlier]
    inside = (later - 1 >= begins[rows][:, None]) & (t[earlier] >= t[rows][:, None] - USUAL_WITHIN_S)
    gap = np.sort(np.where(inside & (gap > 0), gap, np.nan), axis=1)  # NaN last
    n = (~np.isnan(gap)).sum(axis=1)
    at = np.arange(len(rows))
    middle = (gap[at, np.maximum(n - 1, 0) // 2] + gap[at, n // 2]) / 2
    return np.where(n > 0, middle, np.nan)


def _nothing(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(size), np.full(size, None, dtype=object), np.zeros(size)


def _keep(out: tuple, name: str, level: float, over: np.ndarray, span: np.ndarray) -> None:
    """Record `name` where it is the first sensor beyond the highest level so far, and raise the risk."""
    risk, sensor, held = out
    first = over & (level > risk)
    sensor[first] = name
    held[first] = span[first]
    risk[over] = np.maximum(risk[over], level)


def _stamps(values: pd.Series) -> np.ndarray:
    """Times as int64 nanoseconds since the epoch, UTC."""
    return pd.to_datetime(values, utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64)


def _spells(over: np.ndarray, codes: np.ndarray, t: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Per row in `order` (a machine's readings by time), when its spell beyond began (NaN if not beyond)."""
    since = np.full(len(over), np.nan)
    o, c = over[order], codes[order]
    start = np.r_[True, (o[1:] != o[:-1]) | (c[1:] != c[:-1])]
    began = t[order][start][np.cumsum(start) - 1]
    since[order] = np.where(o, began, np.nan)
    return since


def _back(
    first: np.ndarray,
    top: np.ndarray,
    hit: Callable[[np.ndarray], np.ndarray],
    seen: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per range of positions `first`..`top`, the last where `hit` holds (-1 if none) and the earliest after
    it where `seen` holds (-1 if none), looked for from `top` back in blocks that double in length."""
    found, earliest = np.full(len(top), -1), np.full(len(top), -1)
    todo, top, size = np.arange(len(top)), top.copy(), 8
    while todo.size:
        low = np.maximum(first[todo], top[todo] - size + 1)
        n = top[todo] - low + 1
        seg = np.repeat(np.arange(todo.size), n)
        pos = np.arange(n.sum()) + np.repeat(low - np.cumsum(n) + n, n)
        h = hit(pos)
        last_hit = np.full(todo.size, -1)
        np.maximum.at(last_hit, seg[h], pos[h])
        if seen is not None:
            s = seen(pos) & (pos > last_hit[seg])
            none = np.iinfo(np.int64).max
            early = np.full(todo.size, none)
            np.minimum.at(early, seg[s], pos[s])
            got = early < none
            earliest[todo[got]] = early[got]  # this block lies before the blocks seen earlier
        found[todo] = last_hit
        top[todo] = low - 1
        todo = todo[(last_hit < 0) & (low > first[todo])]
        size *= 2
    return found, earliest


def level_of(risk: float) -> str:
    """The limit a risk from `beyond` stands for."""
    return "alarm" if risk >= ALARM_RISK else "warning"


def spec_of(specs: Mapping[str, SensorSpec], sensor: str) -> SensorSpec:
    """The type's spec of a sensor; one it does not describe is spelled out, without a unit."""
    return specs.get(sensor) or SensorSpec(name=sensor)


def phrase(
    sensor: str, value: float, level: str, limit: float, specs: Mapping[str, SensorSpec], held_s: float = 0.0
) -> str:
    """E.g. 'vibration 8.3 mm/s, beyond the OEM alarm limit 7.1 mm/s for 3 h'."""
    spec = spec_of(specs, sensor)
    said = f"{spec.words} {spec.reading(value)}, beyond the OEM {level} limit {spec.reading(limit)}"
    return f"{said} for {span(held_s)}" if held_s > 0 else said


def span(seconds: float) -> str:
    """A length of time as a person reads it (beyond a limit, since a reading): '3 h', '25 min', '40 s'."""
    if seconds >= 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"
