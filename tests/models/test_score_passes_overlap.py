"""Two scoring passes at once (a worker and a manual `servicecast score --once`): each machine scored once.

The first pass is held at the commit of its batch (predictions written, watermarks moved); the second,
which read the same machines as due before that commit, runs meanwhile until it waits for the write lock
(SQLite) or the predictions lock (PostgreSQL), then the first goes on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from fleet.tables import Prediction
from models import scoring, versions
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import simulate
from tests import overlap
from tests.models.fleet_support import PUMP, pump_model

INSERT = "INSERT INTO predictions"


@pytest.fixture
def store(database_url: str) -> Iterator[Engine]:
    """Four pumps with 8 days of hourly telemetry and an active pump model."""
    with overlap.waiting_engine(database_url) as engine:
        pumps = FleetConfig(machines=4, days=8, seed=7, step_seconds=3600, type_mix=((PUMP, 1.0),))
        backfill(simulate(pumps), engine)
        versions.register(engine, model=pump_model(), machine_type=PUMP)
        yield engine


def _two_passes(engine: Engine) -> list[scoring.ScoreReport]:
    """Pass 1 held at the commit of its predictions while pass 2 runs until it waits for a lock or ends."""
    models = versions.load_active(engine)
    return overlap.two_at_once(
        engine,
        lambda: scoring.score_once(engine=engine, models=models),
        held_after=lambda statement: statement.startswith(INSERT),
        # SQLite: the batch's write waits for the write lock next (at BEGIN IMMEDIATE, or at the INSERT).
        waits_after=lambda statement: statement == "BEGIN IMMEDIATE" or statement.startswith(INSERT),
    )


def _per_machine_and_time(engine: Engine) -> Counter:
    with engine.connect() as conn:
        query = select(Prediction.machine_id, Prediction.ts, func.count()).group_by(
            Prediction.machine_id, Prediction.ts
        )
        return Counter({(m, ts): n for m, ts, n in conn.execute(query)})


def test_two_passes_at_once_score_each_machine_once(store: Engine) -> None:
    first, second = _two_passes(store)
    counts = _per_machine_and_time(store)
    assert len(counts) == 4 and set(counts.values()) == {1}, counts  # one prediction per machine and time
    assert (first.machines, first.predictions) == (4, 4)
    assert (second.machines, second.predictions, sum(second.statuses.values())) == (0, 0, 0)
    assert scoring.score_once(engine=store).machines == 0  # and nothing left due
