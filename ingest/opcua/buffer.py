"""The bridge's on-disk outbox: messages wait here, in order, until the broker has acknowledged them."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ingest.opcua import metrics

log = logging.getLogger(__name__)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
    "payload BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS seen (node TEXT PRIMARY KEY, ts TEXT NOT NULL, value TEXT)",
)


Seen = tuple[str, str | None]  # a node's last value stored: source time (ISO 8601), repr (None: older file)


class Buffer:
    """A bounded SQLite queue with the machine's persistent `seq` and the last value stored of each node."""

    def __init__(self, path: Path, *, max_messages: int, drop_oldest: bool = True) -> None:
        self.path = path
        self.max_messages = max_messages
        self.drop_oldest = drop_oldest
        # Autocommit mode; each add is its own explicit transaction. WAL survives a SIGKILL of this process.
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        for statement in SCHEMA:
            self.db.execute(statement)
        if "value" not in {column for _, column, *_ in self.db.execute("PRAGMA table_info(seen)")}:
            self.db.execute("ALTER TABLE seen ADD COLUMN value TEXT")  # a file an older bridge wrote
        row = self.db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        if row is None:
            # A new buffer (first start, or a lost disk) starts at the clock in microseconds, above every seq
            # an earlier buffer of this machine handed out: the ingester never drops new data as redelivered.
            self.db.execute("INSERT INTO meta VALUES ('seq', ?)", (time.time_ns() // 1000,))
        self.count = self.db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        self.added_to: Counter[str] = Counter()  # messages stored since this start per topic; only grows
        # What a subscription's initial value (after a restart or a reconnection) must not send again: only
        # what was stored, so a message refused (full, or by the contract check) is no value sent.
        self.seen: dict[str, Seen] = {
            node: (ts, value) for node, ts, value in self.db.execute("SELECT node, ts, value FROM seen")
        }
        # The latest source time stored in this file: a clock stepping back is told against it.
        times = [datetime.fromisoformat(ts) for ts, _ in self.seen.values()]
        self.newest_seen = max(times, default=datetime.min.replace(tzinfo=UTC))
        self._full = False
        metrics.BUFFERED.set(self.count)

    def last_seq(self) -> int:
        """The seq of the last message added."""
        return self.db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0]

    def add(
        self, topic: str, build: Callable[[int], bytes], seen: dict[str, Seen] | None = None
    ) -> int | None:
        """Store a message built for the next seq, and the nodes' values it covers; its seq, None if full."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if self.count >= self.max_messages and not self._make_room():
                self.db.execute("ROLLBACK")
                return None
            seq = self.last_seq() + 1
            self.db.execute("INSERT INTO outbox (topic, payload) VALUES (?, ?)", (topic, build(seq)))
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (seq,))
            if seen:
                rows = [(node, ts, value) for node, (ts, value) in seen.items()]
                self.db.executemany("INSERT OR REPLACE INTO seen VALUES (?, ?, ?)", rows)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.count += 1
        self.added_to[topic] += 1
        if seen:
            self.seen.update(seen)
            self.newest_seen = max(self.newest_seen, *(datetime.fromisoformat(ts) for ts, _ in seen.values()))
        metrics.BUFFERED.set(self.count)
        if self._full and self.count < self.max_messages:
            self._full = False
        return seq

    def _make_room(self) -> bool:
        """Drop the oldest message (or refuse the new one) when full; log once per episode, count each."""
        if not self._full:
            self._full = True
            policy = "dropping the oldest messages" if self.drop_oldest else "dropping new messages"
            log.warning(
                "buffer %s is full (%d messages); %s until the broker takes some",
                self.path,
                self.max_messages,
                policy,
            )
        metrics.DROPPED.labels(policy="oldest" if self.drop_oldest else "newest").inc()
        if not self.drop_oldest:
            return False
        self.db.execute("DELETE FROM outbox WHERE id = (SELECT min(id) FROM outbox)")
        self.count -= 1
        return True

    def pending(self, after: int, limit: int) -> list[tuple[int, str, bytes]]:
        """Up to `limit` messages after row `after`, oldest first."""
        return self.db.execute(
            "SELECT id, topic, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        ).fetchall()

    def delete(self, ids: list[int]) -> None:
        """Forget messages the broker has acknowledged."""
        if not ids:
            return
        with self.db:
            deleted = self.db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids]).rowcount
        self.count -= deleted
        metrics.BUFFERED.set(self.count)

    def close(self) -> None:
        """Close the file."""
        self.db.close()
