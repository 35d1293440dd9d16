"""The bridge's on-disk buffer: order, a seq that survives restarts, and what happens when it is full."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from prometheus_client import REGISTRY

from ingest.opcua.buffer import Buffer


def dropped(policy: str) -> float:
    return REGISTRY.get_sample_value("servicecast_bridge_dropped_messages_total", {"policy": policy}) or 0.0


def payload(seq: int) -> bytes:
    return str(seq).encode()


def test_messages_keep_their_order_and_seq_survives_reopening(tmp_path) -> None:
    buffer = Buffer(tmp_path / "b.db", max_messages=10)
    first = buffer.add("t", payload, {"ns=2;s=A": ("2026-12-01T00:00:00+00:00", "41.5")})
    second = buffer.add("t", payload)
    assert second == first + 1
    rows = buffer.pending(0, 10)
    assert [p for _, _, p in rows] == [payload(first), payload(second)]
    buffer.delete([rows[0][0]])
    buffer.close()
    again = Buffer(tmp_path / "b.db", max_messages=10)
    assert again.count == 1 and again.last_seq() == second
    assert again.add("t", payload) == second + 1
    assert again.seen == {"ns=2;s=A": ("2026-12-01T00:00:00+00:00", "41.5")}


def test_a_buffer_file_of_an_older_bridge_keeps_its_times_and_learns_values(tmp_path) -> None:
    with sqlite3.connect(tmp_path / "old.db") as db:  # the seen table before it kept each node's value
        db.execute("CREATE TABLE seen (node TEXT PRIMARY KEY, ts TEXT NOT NULL)")
        db.execute("INSERT INTO seen VALUES ('ns=2;s=A', '2026-12-01T00:00:00+00:00')")
    buffer = Buffer(tmp_path / "old.db", max_messages=10)
    assert buffer.seen == {"ns=2;s=A": ("2026-12-01T00:00:00+00:00", None)}
    buffer.add("t", payload, {"ns=2;s=A": ("2026-12-01T00:00:01+00:00", "42.0")})
    again = Buffer(tmp_path / "old.db", max_messages=10)
    assert again.seen == {"ns=2;s=A": ("2026-12-01T00:00:01+00:00", "42.0")}


def test_a_new_buffer_starts_above_the_seqs_of_a_lost_one(tmp_path) -> None:
    lost = Buffer(tmp_path / "lost.db", max_messages=10)
    for _ in range(5):
        last = lost.add("t", payload)
    assert Buffer(tmp_path / "new.db", max_messages=10).add("t", payload) > last


def test_a_full_buffer_drops_the_oldest_and_says_so(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    buffer = Buffer(tmp_path / "b.db", max_messages=3)
    before = dropped("oldest")
    with caplog.at_level(logging.WARNING, logger="ingest.opcua.buffer"):
        seqs = [buffer.add("t", payload) for _ in range(5)]
    assert [p for _, _, p in buffer.pending(0, 10)] == [payload(s) for s in seqs[2:]]
    assert dropped("oldest") - before == 2
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "is full (3 messages); dropping the oldest" in warnings[0]
    assert REGISTRY.get_sample_value("servicecast_bridge_buffered_messages") == 3


def test_drop_newest_keeps_the_oldest_and_refuses_new_messages(tmp_path) -> None:
    buffer = Buffer(tmp_path / "b.db", max_messages=2, drop_oldest=False)
    before = dropped("newest")
    seqs = [buffer.add("t", payload) for _ in range(4)]
    assert seqs[2:] == [None, None]
    assert [p for _, _, p in buffer.pending(0, 10)] == [payload(s) for s in seqs[:2]]
    assert dropped("newest") - before == 2
    buffer.delete([row for row, _, _ in buffer.pending(0, 10)])
    assert buffer.add("t", payload) == seqs[1] + 1
