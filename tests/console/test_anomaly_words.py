"""The machine page says what a prediction's anomaly score means in the words the model's explanations use
(`fleet.display.unusual`): how unlike its type's usual ones the readings are, on a scale of 0 to 1."""

from __future__ import annotations

from sqlalchemy import update

from fleet.db import session
from fleet.tables import Prediction
from tests.api.support import World, add_prediction
from tests.console.client import ConsoleClient, sign_in, visible


def test_the_machine_page_says_what_the_anomaly_score_means(client: ConsoleClient, world: World) -> None:
    machine = world.machines["acme"][1]
    prediction = add_prediction(world.engine, machine, risk=0.4)
    with session(world.engine) as sess:
        sess.execute(update(Prediction).where(Prediction.id == prediction).values(anomaly_score=0.834))
    sign_in(client, world, "tech")

    page = visible(client.get(f"/machines/{machine}").text)

    said = "Readings 0.83 of 1 unlike its machine type's usual ones (anomaly score; 0: as usual)"
    assert said in page, page
    assert "Anomaly score" not in page
