"""The first policy passes of a database, two at once (a worker and a manual `servicecast policy --once`)."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from api import policy
from fleet.db import session
from fleet.tables import Prediction, Watermark
from tests import overlap
from tests.api.support import NOW, build_world


def test_two_first_passes_at_once_both_end_and_apply_each_prediction_once(world_url: str) -> None:
    """No watermark row yet: the first pass is held at the commit of the batch that created its row while the
    second runs until it waits. The second found no row and added one too, and its commit failed on the key
    (PostgreSQL: IntegrityError, so a manual pass exited with an error); now it waits for the first's row and
    reads where the first stopped."""
    world = build_world(world_url, database_busy_timeout_ms=overlap.GUARD_S * 1000)
    with session(world.engine) as sess:
        sess.execute(delete(Watermark))  # as before the database's first pass
        last = sess.scalar(select(func.max(Prediction.id)))
        count = sess.scalar(select(func.count()).select_from(Prediction))
    reports = overlap.two_at_once(
        world.engine,
        lambda: policy.run_once(engine=world.engine, settings=world.settings, now=NOW),
        held_after=lambda statement: statement.startswith("INSERT INTO watermarks"),
        waits_after=lambda statement: statement == "BEGIN IMMEDIATE",
    )
    assert [report.predictions for report in reports] == [count, 0]
    with session(world.engine) as sess:
        assert sess.get_one(Watermark, policy.WATERMARK).value == last
