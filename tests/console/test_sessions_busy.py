"""Console requests beside other SQLite writers (the demo's ingester, scorer, policy and router).

SQLite only: its lock model is the subject. A deferred transaction that has read cannot start to write
once another connection committed meanwhile ("database is locked" at once, the busy timeout unused).
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from fleet.db import session
from fleet.tables import ConsoleSession
from tests.api.support import World, build_world
from tests.console import test_sessions
from tests.console.test_sessions import COOKIE, Clock, sign_in

SETTINGS = {"webhook_url": "http://127.0.0.1:9/crm", "database_busy_timeout_ms": 300}
# The session tests' fixtures, here on this module's own `world`.
clock = test_sessions.clock
client = test_sessions.client


@pytest.fixture
def world(tmp_path) -> World:  # noqa: ANN001
    return build_world(f"sqlite:///{tmp_path / 'console.db'}", **SETTINGS)


def other_connection(world: World) -> sqlite3.Connection:
    """A second writer on the same file, as another servicecast process would be."""
    path = world.settings.database_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=100")
    return conn


def last_seen(world: World):  # noqa: ANN201
    with session(world.engine) as sess:
        return sess.scalar(select(ConsoleSession.last_seen_at))


def test_a_page_view_while_another_process_holds_the_write_lock_answers_and_touches_later(
    client: TestClient, world: World, clock: Clock
) -> None:
    sign_in(client, world, "tech")
    signed_in_at = last_seen(world)
    clock.advance(minutes=2)  # the session is due for its once-a-minute touch
    writer = other_connection(world)
    writer.execute("BEGIN IMMEDIATE")  # e.g. the ingester committing a batch
    try:
        page = client.get("/alerts")
    finally:
        writer.execute("ROLLBACK")
    assert page.status_code == 200, page.text
    assert last_seen(world) == signed_in_at  # best effort: skipped while the database was busy
    assert client.get("/alerts").status_code == 200
    assert last_seen(world) == signed_in_at + timedelta(minutes=2)


def test_a_form_post_waits_for_a_writer_that_commits_between_its_read_and_its_write(
    client: TestClient, world: World
) -> None:
    writer = other_connection(world)
    committed: list[bool] = []

    def commit_meanwhile(conn, cursor, statement: str, *_: object) -> None:  # noqa: ANN001
        # Just before the sign-in's first write, another process commits (a sign-in purges old sessions).
        if statement.startswith("DELETE FROM console_sessions") and not committed:
            try:
                writer.execute("UPDATE change_counters SET version = version + 1")
                committed.append(True)
            except sqlite3.OperationalError:  # the sign-in holds the write lock: the other writer waits
                committed.append(False)

    engine = client.app.state.engine
    event.listen(engine, "before_cursor_execute", commit_meanwhile)
    try:
        home = client.post("/login", data={"api_key": world.tokens["tech"]})
    finally:
        event.remove(engine, "before_cursor_execute", commit_meanwhile)
    assert home.status_code == 200, home.text[-2000:]
    assert COOKIE in client.cookies
    assert committed == [False]
