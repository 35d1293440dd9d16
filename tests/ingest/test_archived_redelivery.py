"""A message redelivered after its row moved to the archive is a duplicate, as the README promises."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from fleet import archive, contract
from ingest.pipeline import Pipeline
from tests.ingest.support import register_fleet

OLD = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_message_redelivered_after_the_archive_move_is_a_duplicate(engine, tmp_path):
    register_fleet(engine, "acme", ["m-1"])
    topic = contract.telemetry_topic("acme", "m-1")
    pipeline = Pipeline(engine=engine)
    sent = [
        (topic, contract.encode_payload(seq, OLD + timedelta(hours=seq), {"t": 1.5}), time.time())
        for seq in (1, 2)
    ]
    assert pipeline.store(sent)[0].stored == 2
    archive.run(engine, url=str(tmp_path / "archive"), before=OLD + timedelta(days=1))
    fresh = (topic, contract.encode_payload(3, OLD + timedelta(hours=3), {"t": 1.5}), time.time())
    outcome, _ = pipeline.store([*sent, fresh])  # a replay of the history and one new message
    assert (outcome.stored, outcome.duplicates, outcome.quarantined) == (1, 2, 0)
