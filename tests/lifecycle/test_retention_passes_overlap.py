"""Two retention runs at once (a cron job and a manual `servicecast retention run`): each erasure announcement
the CRM can no longer be told of is dropped once, with one audit line; each expired row is reported by the run
that deleted it.

The first run is held at the commit of the transaction under test; the second runs meanwhile until it waits
for a lock or ends (`tests.overlap`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from api import routing
from fleet import erasure, erasure_notices, retention
from fleet.db import session
from fleet.settings import Settings
from fleet.tables import ErasureNotice, OutboxMessage, Prediction, WorkflowEvent, utcnow
from tests import overlap
from tests.api.routing_support import SECRET, approved_offers, settings_for
from tests.lifecycle import support
from tests.services import free_port


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    with overlap.waiting_engine(database_url) as eng:
        yield eng


def _erase(engine: Engine, settings: Settings, tenant: str) -> None:
    erasure.erase(
        engine, tenant=tenant, confirm=tenant, by="cli:dpo", archive_url=settings.archive_url, now=utcnow()
    )


def _two_runs(engine: Engine, settings: Settings, now: datetime, *, held_after: str) -> dict[str, list[int]]:
    """Per data class, the counts of the two runs' steps, the held one's first: it is held at the commit of
    the transaction that executed a statement starting with `held_after`."""
    plans = overlap.two_at_once(
        engine,
        lambda: retention.run(engine, settings=settings, now=now),
        held_after=lambda statement: statement.startswith(held_after),
        waits_after=lambda statement: statement == "BEGIN IMMEDIATE",  # SQLite: waits for the write lock next
    )
    counts: dict[str, list[int]] = {}
    for plan in plans:
        for step in plan.steps:
            counts.setdefault(step.data_class, []).append(step.count)
    return counts


@pytest.mark.expect_logged_errors  # the router's dead letter
def test_two_runs_at_once_drop_each_announcement_once(engine: Engine, tmp_path) -> None:
    down = f"http://127.0.0.1:{free_port()}/crm/events"  # nothing listens: the CRM is down
    settings = settings_for(
        webhook_url=down, webhook_secret=SECRET, route_max_attempts=1, archive_url=str(tmp_path / "archive")
    )
    for tenant in ("acme", "globex"):
        approved_offers(engine, settings, tenant=tenant)
    with session(engine) as sess:  # the offer events put off for days: only acme's announcement is tried
        sess.execute(OutboxMessage.__table__.update().values(next_attempt_at=utcnow() + timedelta(days=9)))
    _erase(engine, settings, "acme")
    assert routing.deliver_due(engine=engine, settings=settings).dead == 1  # acme's: dead-lettered
    _erase(engine, settings, "globex")  # no router runs after it: its notice waits
    with session(engine) as sess:
        waiting = erasure_notices.event_id(sess.scalars(select(ErasureNotice.receipt_id)).one())
        (dead,) = sess.scalars(select(OutboxMessage.event_id).where(OutboxMessage.status == "dead")).all()

    now = utcnow() + timedelta(days=erasure_notices.KEEP_DEAD_DAYS + 1)
    counts = _two_runs(engine, settings, now, held_after="INSERT INTO workflow_events")

    with session(engine) as sess:
        dropped = sess.scalars(
            select(WorkflowEvent.data).where(WorkflowEvent.action == "erasure_announcement_dropped")
        ).all()
        assert sess.scalars(select(ErasureNotice)).all() == []
    assert Counter(line["event_id"] for line in dropped) == Counter({dead: 1, waiting: 1})
    assert counts[retention.DEAD_ERASURE_EVENTS] == [2, 0]  # each dropped, and reported, by one run


def test_two_runs_at_once_report_each_expired_prediction_once(engine: Engine, tmp_path) -> None:
    customer_id, machine_id = support.register(engine, "acme", ["p1"])["p1"]
    old = support.START
    with session(engine) as sess:
        for hours in range(3):
            sess.add(
                Prediction(customer_id=customer_id, machine_id=machine_id, ts=old + timedelta(hours=hours))
            )
    settings = Settings(archive_url=str(tmp_path / "archive"), retain_predictions_days=30)
    now = old + timedelta(days=31)
    counts = _two_runs(engine, settings, now, held_after="DELETE FROM predictions")
    with session(engine) as sess:
        assert sess.scalars(select(Prediction)).all() == []
    assert counts["predictions"] == [
        3,
        0,
    ]  # the second counted them before the first's commit, and deleted none
