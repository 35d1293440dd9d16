"""The policy's offer sweep reads the open offers by an index, not every offer ever made: its cost a pass
stays bounded as the ledger grows (measured with `benchmarks.policy --closed-offers`, docs/benchmarks.md)."""

from __future__ import annotations

from sqlalchemy import Engine, event, text

from api import offer_lifecycle
from fleet.db import session
from fleet.settings import Settings
from fleet.tables import utcnow


def _sweep_statements(engine: Engine) -> list[tuple[str, object]]:
    """The SELECTs one sweep sends, with their parameters."""
    sent: list[tuple[str, object]] = []

    def keep(conn, cursor, statement, parameters, *args) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        with session(engine) as sess:
            offer_lifecycle.sweep(sess, now=utcnow(), settings=Settings(database_url=str(engine.url)))
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    return sent


def test_no_query_of_the_sweep_scans_the_offers_table(sqlite_engine: Engine) -> None:
    statements = _sweep_statements(sqlite_engine)
    assert len(statements) == 3  # "no fault found", consent no longer granted, expiry
    with sqlite_engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()
        plans = [[row[-1] for row in cursor.execute(f"EXPLAIN QUERY PLAN {s}", p)] for s, p in statements]
        assert conn.execute(text("SELECT count(*) FROM offers")).scalar() == 0  # the plan is the schema's
    for plan in plans:
        assert any("USING INDEX ix_offers_status_expires" in step for step in plan), plan
        assert not any(step.startswith("SCAN offers") for step in plan), plan
