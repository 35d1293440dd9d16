"""The policy pass beside other writers on SQLite: a commit elsewhere between its reads and writes."""

from __future__ import annotations

from sqlalchemy import event, select, text

from api import policy
from fleet.db import make_engine, session
from fleet.tables import Alert
from tests.api.support import NOW, add_prediction, build_world


def test_a_commit_by_another_process_between_its_read_and_its_write_does_not_fail_the_pass(tmp_path) -> None:
    """A deferred transaction that read first fails at once when another connection commits before it
    writes ("database is locked", no busy wait); the policy takes SQLite's write lock when it begins."""
    url = f"sqlite:///{tmp_path / 'servicecast.db'}"
    world = build_world(url)
    machine = world.machines["acme"][0]
    add_prediction(world.engine, machine, risk=0.97)
    other = make_engine(url, busy_timeout_ms=100)  # another process's short write, e.g. a router's claim
    interleaved = []

    def write_elsewhere(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if interleaved or not statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            return
        try:
            with other.begin() as elsewhere:
                elsewhere.execute(text("UPDATE customers SET name = name || '.' WHERE tenant = 'globex'"))
            interleaved.append("committed first")
        except Exception:  # noqa: BLE001 -- the policy holds the write lock: the other writer waits its turn
            interleaved.append("waited")

    event.listen(world.engine, "before_cursor_execute", write_elsewhere)
    try:
        report = policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    finally:
        event.remove(world.engine, "before_cursor_execute", write_elsewhere)
        other.dispose()
    assert interleaved == ["waited"]
    assert report.alerts_opened_or_updated == 1
    with session(world.engine) as sess:
        assert machine in sess.scalars(select(Alert.machine_id)).all()
