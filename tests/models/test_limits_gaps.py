"""A limit sensor without a single reading in the frame (added to the type, not sent yet) is no limit hit."""

from __future__ import annotations

import copy
from dataclasses import replace
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from fleet import machine_types, type_files
from models import limits
from models.cold_start import ColdStartModel
from models.fleet_model import FleetModel
from simulators.machine_types import TYPES_FILE
from tests.models.fleet_support import PUMP, pump_model, pump_panel

PUMP_SPECS = machine_types.specs_of(type_files.read(TYPES_FILE).definitions[PUMP])
NO_LIMITS = {s: replace(spec, warning=None, alarm=None) for s, spec in PUMP_SPECS.items()}


@lru_cache(maxsize=1)
def _cold_start() -> ColdStartModel:
    return ColdStartModel(limits=limits.limits_of(PUMP_SPECS)).fit(pump_panel())


@pytest.mark.parametrize("kind", ["supervised", "cold_start"])
def test_a_batch_without_any_reading_of_a_limit_sensor_scores_as_without_the_limit(kind: str) -> None:
    # The scorer reads every sensor the type gives limits for; one no machine of the batch sent is a column
    # of NaN. The limit check raised IndexError on it, which stopped the whole scoring pass.
    fitted: FleetModel = pump_model() if kind == "supervised" else _cold_start()
    model, unlimited = copy.deepcopy(fitted).use_types(PUMP_SPECS), copy.deepcopy(fitted).use_types(NO_LIMITS)
    panel = pump_panel().assign(machine=lambda f: f["machine"].astype(str), vibration_rms_mm_s=np.nan)

    scored, risk = model.predict_frame(panel), model.risk_rows(panel)[0]

    assert len(scored) == panel["machine"].nunique()
    said = ["machine", "status", "risk", "alert", "failure_mode"]
    pd.testing.assert_frame_equal(scored[said], unlimited.predict_frame(panel)[said])
    np.testing.assert_array_equal(risk, unlimited.risk_rows(panel)[0])
