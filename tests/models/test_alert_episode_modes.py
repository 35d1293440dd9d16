"""An alert episode whose named mode changes is one alert live, as the backtest counts one episode."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select

from api import policy
from fleet.db import session
from fleet.tables import Alert, Prediction
from models import episodes
from tests.api.support import NOW, add_prediction, build_world


def test_a_limit_alert_and_the_model_s_later_alert_in_another_mode_are_one_episode(database_url) -> None:
    world = build_world(database_url)
    machine = world.machines["acme"][2]  # the world gives it no prediction
    # The OEM alarm limit alerts at risk 1.0 with the model's mode of that moment; an hour later the model
    # itself alerts, naming another mode; 30 h below the threshold end the episode, then a new one begins.
    steps = [(0, 1.0, "bearing_wear"), (1, 0.9, "seal_leak"), (2, 0.9, "seal_leak"), (32, 0.9, "seal_leak")]
    for hours, risk, mode in steps:
        pid = add_prediction(world.engine, machine, risk=risk, mode=mode)
        with session(world.engine) as sess:
            sess.get(Prediction, pid).ts = NOW + timedelta(hours=hours)
        policy.run_once(engine=world.engine, settings=world.settings, now=NOW + timedelta(hours=hours))

    with session(world.engine) as sess:
        live = sess.execute(
            select(Alert.failure_mode, Alert.count).where(Alert.machine_id == machine).order_by(Alert.id)
        ).all()
    ts = pd.DatetimeIndex([NOW + timedelta(hours=h) for h, _, _ in steps])
    counted = episodes.alert_starts(np.full(len(steps), "m"), ts, np.array([r for _, r, _ in steps]), 0.5)
    assert len(live) == len(counted) == 2, live
    assert [tuple(a) for a in live] == [("seal_leak", 3), ("seal_leak", 1)]  # the latest prediction's mode
