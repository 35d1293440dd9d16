"""The trend limits a chart draws are the ones the model predicts with, read through models.versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.console import views
from fleet.db import session
from models import versions
from tests.models.fleet_support import PUMP, pump_model
from tests.test_layers import imported_packages


def test_limits_come_from_the_recorded_params_or_else_from_the_artifact(sqlite_engine) -> None:
    model = pump_model()
    recorded = versions.register(
        sqlite_engine, model=model, machine_type=PUMP, params={"trend_limits": dict(model.trend_.limits_)}
    )
    bare = versions.register(sqlite_engine, model=model, machine_type=PUMP, params={})
    plain = versions.register(sqlite_engine, model={"not": "a fleet model"}, machine_type=PUMP)
    assert model.trend_.limits_  # the check below compares something
    with session(sqlite_engine) as sess:
        assert versions.trend_limits(sess, recorded) == model.trend_.limits_
        assert versions.trend_limits(sess, bare) == model.trend_.limits_
        assert versions.trend_limits(sess, plain) == {}
        assert views.trend_limits(sess, bare) == model.trend_.limits_
        assert views.trend_limits(sess, "no-such-version") == {}
        with pytest.raises(versions.ModelNotFound):
            versions.trend_limits(sess, "no-such-version")


def test_the_console_never_unpickles_an_artifact_itself() -> None:
    assert "pickle" not in imported_packages(Path(views.__file__).read_text())
