"""A prediction with a risk that no failure model made (a cold start's, or one from the readings alone) is
shown with its risk and says where it comes from in the words its explanation uses; "not enough recent
telemetry" is said only when there is not."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from fleet.db import session
from fleet.tables import Prediction
from tests.api.support import World, add_prediction
from tests.console.client import ConsoleClient, sign_in, visible


def _fact(html: str, name: str) -> str:
    return visible(re.search(rf'<dd id="machine-{name}">(.*?)</dd>', html, re.S).group(1)).strip()


@pytest.mark.parametrize(
    ("status", "said"),
    [
        ("cold_start", "no failure history yet"),
        ("fallback", "from its readings alone, no failure model to use"),
    ],
)
def test_a_risk_without_a_failure_model_is_shown_with_where_it_comes_from(
    client: ConsoleClient, world: World, status: str, said: str
) -> None:
    machine = world.machines["acme"][1]
    prediction = add_prediction(world.engine, machine, risk=0.9)
    with session(world.engine) as sess:
        sess.execute(update(Prediction).where(Prediction.id == prediction).values(status=status))
    sign_in(client, world, "tech")

    html = client.get(f"/machines/{machine}").text

    assert _fact(html, "risk") == f"90 % ({said}) within 7.0 d"
    assert "Not enough recent telemetry" not in html
    fleet = visible(client.get("/fleet").text)
    assert f"90 % ({said})" in fleet
