"""build_world's copies: the same rows as a world built anew, and each copy its own."""

from __future__ import annotations

from sqlalchemy import DateTime, inspect, select, text

from fleet.db import session
from fleet.tables import Offer
from tests.api.support import build_world

# Random per build: an API key's public prefix and hash, and the audit trail's record of the prefix.
RANDOM = {("api_keys", "prefix"), ("api_keys", "secret_hash"), ("workflow_events", "after")}


def _rows(world) -> dict[str, list[tuple]]:
    with world.engine.connect() as conn:
        out = {}
        for table in inspect(conn).get_table_names():
            columns = [  # times are the code's clock's, which moved on between the builds
                c["name"]
                for c in inspect(conn).get_columns(table)
                if not isinstance(c["type"], DateTime) and (table, c["name"]) not in RANDOM
            ]
            listed = ", ".join(f'"{c}"' for c in columns)
            out[table] = sorted(map(tuple, conn.execute(text(f'SELECT {listed} FROM "{table}"'))), key=repr)
        return out


def test_a_copied_world_has_the_rows_of_a_built_one_and_changes_to_it_stay_its_own(tmp_path) -> None:
    worlds = [build_world(f"sqlite:///{tmp_path / f'{i}.db'}", crm_replay_window_s=301) for i in range(4)]
    first, second, third, fourth = worlds
    assert first.tokens != second.tokens == third.tokens == fourth.tokens  # built, built and kept, copies
    assert _rows(third) == _rows(first)
    with session(third.engine) as sess:
        sess.get(Offer, third.offers["acme"][0]).status = "sent"
    with session(fourth.engine) as sess:
        statuses = set(sess.scalars(select(Offer.status)))
    assert statuses == {"proposed"}
    for world in worlds:
        with world.client() as client:
            assert client.get("/api/v1/alerts", headers=world.headers("tech")).status_code == 200
