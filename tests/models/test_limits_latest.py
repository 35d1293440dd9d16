"""The scorer's latest-row limit check (`limits.beyond_latest`) says what the backtests' per-row check
(`limits.beyond`) says at each machine's latest row, on random frames, readings carried or not."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet import machine_types, type_files
from models import limits, time_base
from simulators.machine_types import TYPES_FILE
from tests.models.fleet_support import PUMP, pump_model, pump_panel

LEVELS = {"alarm": limits.ALARM, "both": limits.WARNING_AND_ALARM}
# Readings on a coarse grid around the limits below, so that readings at a limit and NaNs are frequent.
READING = st.one_of(st.sampled_from([4.0, 5.0, 6.0, 7.0, 8.0, 9.0]), st.just(np.nan))
# How long a reading is carried into messages without it: not at all, within one 30 s step, or for longer.
HOLD_S = st.sampled_from([0.0, 30.0, 45.0, 3600.0])


@st.composite
def frames(draw: st.DrawFn) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Up to 5 machines (some with one row), shuffled rows on a 30 s grid (times may repeat within a
    machine), two sensors with NaNs, limits high or low with on-delays of 0, 30 s, 60 s or an hour."""
    n = draw(st.integers(1, 40))
    machines = draw(st.lists(st.sampled_from(["m0", "m1", "m10", "m2", "m9"]), min_size=n, max_size=n))
    seconds = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    frame = pd.DataFrame(
        {
            "machine": machines,
            "ts": pd.Timestamp("2026-12-05", tz="UTC") + pd.to_timedelta(np.array(seconds) * 30, unit="s"),
            "a": draw(st.lists(READING, min_size=n, max_size=n)),
            "b": draw(st.lists(READING, min_size=n, max_size=n)),
        }
    )
    found = {}
    for name in draw(st.lists(st.sampled_from(["a", "b", "gone"]), unique=True, min_size=1)):
        bad = draw(st.sampled_from(["high", "low", None]))
        warning, alarm = draw(st.sampled_from([(5.0, 7.0), (None, 7.0), (5.0, None), (6.0, 6.0)]))
        if bad == "low":
            warning, alarm = (None if v is None else 12.0 - v for v in (warning, alarm))
        found[name] = {"warning": warning, "alarm": alarm, "bad": bad}
        found[name]["on_delay_s"] = draw(st.sampled_from([0.0, 30.0, 60.0, 3600.0]))
    return frame, found


def _sorted(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Rows by machine and time, and each machine's latest sorted position, as `FleetFeatures.prepare`."""
    codes = pd.factorize(frame["machine"].to_numpy(), sort=True)[0]
    order = np.lexsort((frame["ts"].array.asi8, codes))
    keys = codes[order]
    return order, np.flatnonzero(np.r_[keys[1:] != keys[:-1], True])


@settings(max_examples=300, deadline=None)
@given(frames(), st.sampled_from(sorted(LEVELS)), HOLD_S)
def test_the_latest_row_check_equals_the_per_row_check_at_each_machines_latest_row(
    drawn, levels, hold_s
) -> None:
    frame, found = drawn
    order, last = _sorted(frame)
    rows = order[last]

    risk, sensor, held = limits.beyond(frame, found, LEVELS[levels], hold_s=hold_s)
    fast = limits.beyond_latest(frame, found, LEVELS[levels], order=order, last=last, hold_s=hold_s)

    np.testing.assert_array_equal(fast[0], risk[rows])
    np.testing.assert_array_equal(fast[1], sensor[rows])
    np.testing.assert_array_equal(fast[2], held[rows])


@settings(max_examples=300, deadline=None)
@given(frames(), st.sampled_from(sorted(LEVELS)), HOLD_S)
def test_a_carried_reading_says_what_it_said_when_read(drawn, levels, hold_s) -> None:
    """Per sensor, a row without the reading checks as the row of its machine's last reading (found with
    pandas) if that is at most `hold_s`, or `time_base.HOLD` of the machine's usual interval there if
    longer, older, else as nothing; a row with one as without carrying."""
    frame, found = drawn
    by_time = frame.iloc[_sorted(frame)[0]]
    hold = np.fmax(hold_s, time_base.HOLD * _usual_intervals(by_time).reindex(frame.index).to_numpy())
    for name, limit in found.items():
        if name not in frame:
            continue
        read = pd.Series(by_time.index.where(by_time[name].notna()), index=by_time.index, dtype=float)
        source = read.groupby(by_time["machine"]).ffill().reindex(frame.index)
        secs = (frame["ts"] - frame["ts"].min()).dt.total_seconds().to_numpy()  # by row, a RangeIndex
        src = source.fillna(-1).astype(int).to_numpy()
        age = secs - np.where(src >= 0, secs[src], np.nan)
        source = source.where(frame[name].notna() | ((age <= hold) & (hold_s > 0)))  # 0: none
        carried = limits.beyond(frame, {name: limit}, LEVELS[levels], hold_s=hold_s)
        alone = limits.beyond(frame, {name: limit}, LEVELS[levels], hold_s=0.0)
        has = source.notna().to_numpy()
        at = frame.index.get_indexer(source[has].astype(int))
        for got, want in zip(carried, alone, strict=True):
            np.testing.assert_array_equal(got[has], want[at])
        assert (carried[0][~has] == 0).all()


def _usual_intervals(by_time: pd.DataFrame) -> pd.Series:
    """Per row of rows by machine and time, the median of the positive intervals between the machine's
    rows among its latest `time_base.RATE_READINGS` up to it (those within a day of it), in seconds."""
    usual = pd.Series(np.nan, index=by_time.index)
    for _, rows in by_time.groupby("machine", sort=False):
        # In seconds as numbers: pandas per row was most of this test's CPU.
        ts = (rows["ts"] - rows["ts"].iloc[0]).dt.total_seconds().to_numpy()
        medians = []
        for k in range(len(ts)):
            near = ts[max(0, k - time_base.RATE_READINGS + 1) : k + 1]
            gaps = np.diff(near[near >= ts[k] - limits.USUAL_WITHIN_S])
            medians.append(np.median(gaps[gaps > 0]) if (gaps > 0).any() else np.nan)
        usual[rows.index] = medians
    return usual


def test_a_spell_walked_back_over_many_rows_and_gaps_is_measured_from_its_first_reading() -> None:
    """One machine beyond for 500 hourly readings with every third missing, after a reading below: the
    walk back goes through several doubling blocks and the span counts from the spell's first reading."""
    hours = np.arange(600)
    value = np.where(hours < 99, 5.0, 8.0)
    value[(hours > 100) & (hours % 3 == 0)] = np.nan
    frame = pd.DataFrame(
        {
            "machine": "m",
            "ts": pd.Timestamp("2026-12-05", tz="UTC") + pd.to_timedelta(hours, unit="h"),
            "a": value,
        }
    ).iloc[::-1]  # newest first: the order comes from the times
    found = {"a": {"warning": None, "alarm": 7.0, "bad": "high", "on_delay_s": 60.0}}
    order, last = _sorted(frame)

    risk, sensor, held = limits.beyond_latest(frame, found, order=order, last=last, hold_s=0.0)

    assert (risk.tolist(), sensor.tolist(), held.tolist()) == ([1.0], ["a"], [(599 - 99) * 3600.0])


def test_live_scores_equal_the_backtests_risk_at_each_machines_latest_row() -> None:
    """Through the model: the pumps' vibration at 9 mm/s on random rows (some missing, some single),
    with on-delays of 0 and 60 s; the live alarm alerts are the backtest's alarms at the latest rows."""
    specs = machine_types.specs_of(type_files.read(TYPES_FILE).definitions[PUMP])
    panel = pump_panel().assign(machine=lambda f: f["machine"].astype(str))
    rng = np.random.default_rng(3)
    tail = panel.groupby("machine").tail(4).index
    panel = panel.copy()
    panel.loc[tail, "vibration_rms_mm_s"] = rng.choice([9.0, 9.0, 3.0, np.nan], size=len(tail))
    for delay in (0.0, 60.0):
        model = copy.deepcopy(pump_model()).use_types(
            {s: replace(spec, alarm_on_delay_s=delay) for s, spec in specs.items()}
        )
        live = model.predict_frame(panel).set_index("machine")
        risk, _ = model.risk_rows(panel)
        latest = panel.sort_values("ts", kind="mergesort").groupby("machine").tail(1)
        alarm = pd.Series(risk[latest.index] == limits.ALARM_RISK, index=latest["machine"].to_numpy())
        limited = live["explanation"].str.startswith("vibration 9 mm/s, beyond the OEM alarm limit")

        assert 0 < alarm.sum() < len(alarm)
        pd.testing.assert_series_equal(limited, alarm.reindex(live.index), check_names=False)
