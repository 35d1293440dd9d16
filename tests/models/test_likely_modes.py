"""A prediction names every failure mode likely enough given a failure, with its share, most likely first."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
from sqlalchemy import select

from fleet.db import session
from fleet.machine_types import SensorSpec
from fleet.tables import Prediction
from models import modes, scoring, versions
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import simulate
from tests.models.fleet_support import PUMP, pump_model

# Seal leak most likely, bearing wear exactly at the rule's share, the rest below it.
SHARES = {"bearing_wear": 0.3, "coupling_failure": 0.05, "impeller_fouling": 0.05, "seal_leak": 0.6}


def test_every_mode_at_the_share_or_above_is_named_most_likely_first() -> None:
    shares = pd.DataFrame(
        [[0.3, 0.1, 0.6], [0.29, 0.71, 0.0], [0.45, 0.1, 0.45]], columns=["bearing", "coupling", "seal"]
    )
    assert modes.likely_modes(shares) == [
        [{"mode": "seal", "share": 0.6}, {"mode": "bearing", "share": 0.3}],
        [{"mode": "coupling", "share": 0.71}],
        [{"mode": "bearing", "share": 0.45}, {"mode": "seal", "share": 0.45}],  # a tie: argmax's order
    ]
    named = modes.likely_modes(shares)[0]
    assert modes.words(named, "seal") == "also possible: bearing (30 %), likely given a failure"
    assert modes.words(modes.likely_modes(shares)[1], "coupling") == ""


@pytest.fixture
def store(engine):
    """8 days of 12 machines of the simulated fleet."""
    backfill(simulate(FleetConfig(machines=12, days=8, seed=2, step_seconds=3600, failure_rate=20)), engine)
    return engine


def _scored(engine) -> list[Prediction]:
    with session(engine) as sess:
        return [p for p in sess.scalars(select(Prediction)).all() if p.status == "ok"]


def test_the_scorer_stores_every_likely_mode_with_its_share(store) -> None:
    model = copy.deepcopy(pump_model())
    version = versions.register(store, model=model, machine_type=PUMP)
    assert list(model.classifier_.modes_) == list(SHARES)
    model.classifier_.mode_shares_table = lambda table: pd.DataFrame(SHARES, index=table.index)
    scoring.score_once(engine=store, models={PUMP: (version, model)})
    scored = _scored(store)
    assert scored
    for p in scored:
        assert p.failure_mode == "seal_leak"  # still the most likely one
        assert p.likely_modes == [{"mode": "seal_leak", "share": 0.6}, {"mode": "bearing_wear", "share": 0.3}]
        assert "also possible: bearing wear (30 %), likely given a failure" in p.explanation


def test_with_the_trained_mode_model_the_named_modes_follow_the_rule(store) -> None:
    versions.register(store, model=pump_model(), machine_type=PUMP)
    scoring.score_once(engine=store)
    scored = _scored(store)
    assert scored
    for p in scored:
        shares = [m["share"] for m in p.likely_modes]
        assert all(s >= modes.MODE_SHARE for s in shares) and shares == sorted(shares, reverse=True)
        assert not p.likely_modes or p.likely_modes[0]["mode"] == p.failure_mode


def test_a_limit_or_trend_mode_is_named_by_its_sensor() -> None:
    specs = {
        "vibration_rms_mm_s": SensorSpec(name="vibration_rms_mm_s", unit="mm/s", display_name="vibration")
    }
    assert modes.name("limit:vibration_rms_mm_s", specs) == "vibration beyond its OEM limit"
    assert modes.name("trend:oil_temp_c") == "oil temp c trending to its limit"
    assert modes.name("bearing_wear") == "bearing wear"
    assert modes.name(None) == "—"
