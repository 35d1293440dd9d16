"""The policy pass beside other writers on SQLite: a commit elsewhere between its reads and writes."""

from __future__ import annotations

from sqlalchemy import event, select

from api import policy
from fleet.db import session
from fleet.tables import Alert, Prediction
from tests.api.support import NOW, add_prediction, build_world
from tests.write_lock import commit_elsewhere_before_first_write


def test_a_commit_by_another_process_between_its_read_and_its_write_does_not_fail_the_pass(tmp_path) -> None:
    """A deferred transaction that read first fails at once when another connection commits before it
    writes ("database is locked", no busy wait); the policy takes SQLite's write lock when it begins."""
    world = build_world(f"sqlite:///{tmp_path / 'servicecast.db'}")
    machine = world.machines["acme"][0]
    add_prediction(world.engine, machine, risk=0.97)
    with commit_elsewhere_before_first_write(world.engine) as happened:
        report = policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    assert happened == ["waited"]
    assert report.alerts_opened_or_updated == 1
    with session(world.engine) as sess:
        assert machine in sess.scalars(select(Alert.machine_id)).all()


def test_the_pass_holds_the_lock_for_at_most_a_batch_of_predictions_at_a_time(tmp_path) -> None:
    """Each batch holds SQLite's write lock while it works, ingest takes its turn between them. A batch of
    50 held it 2.6 s (median; up to 5.0 s) beside a ledger of 3,000 offers while the pass trained its offer
    chooser for each batch; a batch of `policy.BATCH` holds it 0.2–0.4 s (docs/benchmarks.md, H3)."""
    world = build_world(f"sqlite:///{tmp_path / 'servicecast.db'}")
    machines = world.machines["acme"]
    first = add_prediction(world.engine, machines[0], risk=0.5)
    with session(world.engine) as sess:  # copies of it as the scorer writes them, a batch and more
        row = sess.get(Prediction, first)
        columns = {c.key: getattr(row, c.key) for c in Prediction.__table__.c if c.key != "id"}
        sess.add_all(
            Prediction(**columns | {"machine_id": machines[i % 3], "risk": 0.6 if i % 100 == 0 else 0.3})
            for i in range(2 * policy.BATCH + 19)
        )
    batches: list[str] = []  # the policy watermark's writes, one per batch

    def count_batch(conn, cursor, statement, parameters, *args) -> None:  # noqa: ANN001
        writes = statement.lstrip().upper().startswith(("INSERT INTO WATERMARKS", "UPDATE WATERMARKS"))
        if writes and policy.WATERMARK in parameters:
            batches.append(statement)

    event.listen(world.engine, "before_cursor_execute", count_batch)
    try:
        report = policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    finally:
        event.remove(world.engine, "before_cursor_execute", count_batch)
    assert report.predictions == 2 * policy.BATCH + 20
    assert len(batches) == 3  # two full batches and 20 predictions, each batch in its own transaction


def test_a_batch_mostly_at_risk_applies_at_most_a_bounded_number_of_them_under_the_lock(tmp_path) -> None:
    """A prediction at risk costs the batch an alert and a proposal: `policy.BATCH` predictions 90 % at risk
    held the lock 5.6–7.8 s, past ingest's 5 s busy timeout; stopping at the `policy.AT_RISK`-th, 0.3–0.9 s
    (docs/benchmarks.md, H4). The rest wait for the next transaction."""
    world = build_world(f"sqlite:///{tmp_path / 'servicecast.db'}")
    machines = world.machines["acme"]
    first = add_prediction(world.engine, machines[1], risk=0.8, hours_ahead=240)
    with session(world.engine) as sess:  # every one at risk, as after a new model or a fleet-wide fault
        row = sess.get(Prediction, first)
        columns = {c.key: getattr(row, c.key) for c in Prediction.__table__.c if c.key != "id"}
        sess.add_all(Prediction(**columns) for _ in range(2 * policy.AT_RISK + 9))
    marks: list[int] = []  # the watermark each transaction wrote

    def watermark(conn, cursor, statement, parameters, *args) -> None:  # noqa: ANN001
        writes = statement.lstrip().upper().startswith(("INSERT INTO WATERMARKS", "UPDATE WATERMARKS"))
        if writes and policy.WATERMARK in parameters:
            marks.append(next(v for v in parameters if isinstance(v, int)))

    event.listen(world.engine, "before_cursor_execute", watermark)
    try:
        report = policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    finally:
        event.remove(world.engine, "before_cursor_execute", watermark)
    assert report.predictions == 2 * policy.AT_RISK + 10 == report.alerts_opened_or_updated
    applied = [b - a for a, b in zip([first - 1, *marks], marks, strict=False)]
    assert applied == [policy.AT_RISK, policy.AT_RISK, 10]
