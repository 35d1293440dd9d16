"""What a test database's DROP DATABASE waits for, found by a second session; a drop that waits too long is
cancelled, so that the run says why instead of hanging until pytest's timeout."""

from __future__ import annotations

import threading

from sqlalchemy import Connection, Engine, text

# The sessions that matter to a drop: those blocking it, those on the database or holding a lock on it,
# and the checkpointer, whose checkpoint every DROP DATABASE waits for.
_SESSIONS = text(
    "SELECT pid, datname, backend_type, state, wait_event_type, wait_event, "
    "round(extract(epoch FROM clock_timestamp() - query_start)) AS seconds, left(query, 120) AS query "
    "FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND ("
    "pid = :drop OR pid = ANY(pg_blocking_pids(:drop)) OR datname = :db OR backend_type = 'checkpointer' "
    "OR pid IN (SELECT l.pid FROM pg_locks l JOIN pg_database d ON l.objid = d.oid "
    "WHERE l.locktype = 'object' AND l.classid = 'pg_database'::regclass AND d.datname = :db)) ORDER BY pid"
)
_CHECKPOINT_WAITS = ("CheckpointStart", "CheckpointDone")


class Watchdog:
    """Watches the DROP DATABASE of `db` about to run on `conn`: one still running after `wait_s` is described
    (`found`), then cancelled."""

    def __init__(self, admin: Engine, conn: Connection, db: str, wait_s: float) -> None:
        self.admin = admin
        self.db = db
        self.pid = conn.scalar(text("SELECT pg_backend_pid()"))
        self.timer = threading.Timer(wait_s, self._give_up)
        self.found = ""

    def __enter__(self) -> Watchdog:
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()
        self.timer.join()  # a cancel it may still send lands before the connection serves anything else

    def look(self) -> str:
        """The sessions around the drop, one line each, the drop's own first."""
        with self.admin.connect() as conn:
            rows = conn.execute(_SESSIONS, {"drop": self.pid, "db": self.db}).all()
        lines = []
        for row in sorted(rows, key=lambda row: row.pid != self.pid):
            who = (
                "the drop" if row.pid == self.pid else f"pid {row.pid} ({row.backend_type}, db {row.datname})"
            )
            wait = f"waits on {row.wait_event_type}/{row.wait_event}" if row.wait_event else "runs"
            into = f", {row.seconds:g} s into {row.query!r}" if row.query else ""
            lines.append(f"\n  {who}: {row.state or '-'}, {wait}{into}")
            if row.pid == self.pid and row.wait_event in _CHECKPOINT_WAITS:
                lines.append(" (the checkpoint DROP DATABASE forces: see the server log's checkpoint times)")
        return "".join(lines)

    def _give_up(self) -> None:
        self.found = f"; given up after {self.timer.interval:g} s:{self.look()}"
        with self.admin.connect() as conn:
            conn.execute(text("SELECT pg_cancel_backend(:pid)"), {"pid": self.pid})
