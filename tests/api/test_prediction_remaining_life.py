"""A stored prediction's remaining life in the API is one only when a failure model made its risk
(`estimate.made_by_failure_model`): a cold-start or readings-alone row an older version stored with the
RUL model's cap (336 h, band 336–336) answers none, and the OpenAPI document says why."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import Prediction
from tests.api.support import add_prediction, build_world

CAP = {"rul_hours": 336.0, "rul_low": 336.0, "rul_high": 336.0}
LIFE = ("rul_hours", "rul_low", "rul_high")


@pytest.fixture
def world(database_url):
    return build_world(database_url)


def test_an_older_cold_start_or_readings_alone_row_shows_no_remaining_life(world) -> None:
    machine = world.machines["acme"][2]
    kept = add_prediction(world.engine, machine, risk=0.7, hours_ahead=40.0)
    older = {
        status: add_prediction(world.engine, machine, risk=0.85) for status in ("cold_start", "fallback")
    }
    with session(world.engine) as sess:
        for status, prediction in older.items():
            sess.execute(update(Prediction).where(Prediction.id == prediction).values(status=status, **CAP))

    with world.client() as client:
        rows = client.get(f"{API_PREFIX}/machines/{machine}/predictions", headers=world.headers("tech"))
        schema = client.app.openapi()["components"]["schemas"]["PredictionOut"]

    assert rows.status_code == 200
    by_id = {row["id"]: row for row in rows.json()}
    for prediction in older.values():
        assert [by_id[prediction][name] for name in LIFE] == [None, None, None], by_id[prediction]
    assert [by_id[kept][name] for name in LIFE] == [40.0, 28.0, 52.0]  # a failure model's stays
    for name in LIFE:
        assert "failure model" in schema["properties"][name]["description"], schema["properties"][name]
