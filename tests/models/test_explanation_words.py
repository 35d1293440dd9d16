"""The explanation a prediction stores reads as the console does: risk in percent, display names, no -0.00."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from fleet import display, machine_types
from fleet.db import session
from fleet.tables import Prediction
from models import explain, scoring, versions
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import simulate
from simulators.machine_types import TYPES_FILE
from tests.models.fleet_support import PUMP, pump_model

HEAD = re.compile(r"risk (\d{1,3}) %")


@pytest.fixture
def scored(engine) -> list[Prediction]:
    """The predictions the scorer stores for 8 days of 12 simulated machines with their types: the pumps'."""
    backfill(simulate(FleetConfig(machines=12, days=8, seed=2, step_seconds=3600, failure_rate=20)), engine)
    machine_types.apply_file(engine=engine, path=TYPES_FILE)
    versions.register(engine, model=pump_model(), machine_type=PUMP)
    scoring.score_once(engine=engine)
    with session(engine) as sess:
        return [p for p in sess.scalars(select(Prediction)).all() if p.status == "ok"]


def test_a_stored_explanation_gives_the_risk_in_percent_and_sensors_by_their_display_names(
    engine, scored
) -> None:
    assert scored
    with session(engine) as sess:
        specs = machine_types.model_specs(sess, PUMP)
    for p in scored:
        head = HEAD.match(p.explanation)
        assert head, p.explanation
        assert int(head.group(1)) == round(p.risk * 100)
        texts = [p.explanation, *(c["text"] for c in p.contributions)]
        for text in texts:
            assert "-0.00" not in text and "_" not in text, text
            assert not any(name.replace("_", " ") in text for name in specs if "_" in name), text
    said = " ".join(p.explanation for p in scored)
    assert any(spec.words in said for spec in specs.values())


def test_a_contribution_that_rounds_to_zero_reads_without_a_sign() -> None:
    assert explain.describe("flow_m3h", 0.01, 0.0, -0.004, "flow").endswith(", 0.00 risk")
    assert (
        explain.describe("flow_m3h", float("nan"), 0.0, -0.001, "flow")
        == "flow: no recent readings, 0.00 risk"
    )
    assert explain.describe("flow_m3h", 0.4, 0.0, 0.31, "flow").endswith(", +0.31 risk")


def test_a_contribution_reads_the_same_in_its_sentence_as_in_the_console_table() -> None:
    # The console's table formats the stored (4-place) contribution to two places; the sentence must
    # say the same figure, not one rounded from the unrounded value (-0.08496 → -0.08 vs -0.0850 → -0.09).
    table = pd.DataFrame({"flow__dev24": [-0.04], "pressure__dev24": [0.2]})
    records, _ = explain.explain_rows(
        ["flow", "pressure"], table, np.array([[-0.08496, 0.3]]), trend=np.full((1, 2), np.nan)
    )
    for item in records[0]:
        assert item["text"].endswith(f"{display.signed(item['contribution'])} risk"), item
