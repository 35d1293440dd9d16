"""The batch writer on its own: one row the database refuses does not hold back the rest."""

from __future__ import annotations

import queue
import time

from sqlalchemy import text

from ingest.pipeline import Pipeline
from ingest.schemas import Envelope
from ingest.writer import BatchWriter
from tests.ingest.support import (
    count_rows,
    machine_codes,
    messages,
    quarantine_reasons,
    register_fleet,
    wait_until,
)


def test_a_row_the_database_refuses_is_quarantined_and_its_batch_is_stored(sqlite_engine):
    register_fleet(sqlite_engine, "acme", machine_codes(5))
    with sqlite_engine.begin() as conn:
        # A poison row that passes the contract but that this database refuses on its own.
        conn.execute(
            text(
                "CREATE TRIGGER poison BEFORE INSERT ON telemetry WHEN NEW.seq = 13 "
                "BEGIN SELECT RAISE(ABORT, 'seq 13 refused'); END"
            )
        )
    inbox: queue.Queue[Envelope] = queue.Queue()
    acked: list[Envelope] = []
    writer = BatchWriter(pipeline=Pipeline(engine=sqlite_engine), inbox=inbox, on_committed=acked.extend)
    batch = messages("acme", machine_codes(5), per_machine=20)
    for mid, (topic, payload) in enumerate(batch, start=1):
        inbox.put(Envelope(topic, payload, 1, mid, time.time()))
    writer.start()
    try:
        wait_until(lambda: len(acked) == len(batch), 30, "every message committed and handed back for acking")
    finally:
        assert writer.stop(10)
    assert count_rows(sqlite_engine) == len(batch) - 5
    assert quarantine_reasons(sqlite_engine) == ["db_rejected"] * 5
    assert writer.stats.quarantined == 5 and writer.stats.stored == len(batch) - 5
