"""The batch writer on its own: one row the database refuses does not hold back the rest."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from sqlalchemy import select, text

from fleet.settings import MqttEndpoint, Settings
from fleet.tables import Quarantine
from ingest import metrics
from ingest.pipeline import Pipeline
from ingest.schemas import Envelope
from ingest.service import Ingester
from tests import services
from tests.ingest.support import (
    count_rows,
    drain_with_writer,
    machine_codes,
    messages,
    poison_everything,
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
    batch = messages("acme", machine_codes(5), per_machine=20)
    writer = drain_with_writer(Pipeline(engine=sqlite_engine), batch)
    assert count_rows(sqlite_engine) == len(batch) - 5
    assert quarantine_reasons(sqlite_engine) == ["db_rejected"] * 5
    assert writer.stats.quarantined == 5 and writer.stats.stored == len(batch) - 5


class RaisingPipeline(Pipeline):
    """Our own code failing on one message (a bug the contract did not foresee)."""

    def store(self, messages):
        if any(b'"seq":13,' in payload for _, payload, _ in messages):
            raise RuntimeError("cannot handle seq 13")
        return super().store(messages)


@pytest.mark.expect_logged_errors
def test_a_message_our_code_fails_on_is_quarantined_as_internal_error_and_its_batch_is_stored(
    engine,
):
    register_fleet(engine, "acme", machine_codes(5))
    batch = messages("acme", machine_codes(5), per_machine=20)
    writer = drain_with_writer(RaisingPipeline(engine=engine), batch)
    assert writer.alive
    assert count_rows(engine) == len(batch) - 5
    assert quarantine_reasons(engine) == ["internal_error"] * 5
    with engine.connect() as conn:
        details = set(conn.scalars(select(Quarantine.detail)))
    assert details == {"RuntimeError: cannot handle seq 13"}


@pytest.mark.expect_logged_errors
def test_a_dead_writer_says_so_on_readyz(sqlite_engine, tmp_path):
    register_fleet(sqlite_engine, "acme", machine_codes(1))
    poison_everything(sqlite_engine)
    settings = Settings(database_url=str(sqlite_engine.url), mqtt_url="mqtt://127.0.0.1:1")
    ingester = Ingester(settings=settings, engine=sqlite_engine, endpoint=MqttEndpoint("mqtt://127.0.0.1:1"))
    port = services.free_port()
    server = metrics.serve(port, ready=ingester.readiness)
    try:
        ingester.writer.start()
        for mid, (topic, payload) in enumerate(messages("acme", machine_codes(1), per_machine=13), start=1):
            ingester.inbox.put(Envelope(topic, payload, 1, mid, time.time()))
        wait_until(lambda: not ingester.writer.alive, 30, "the writer to die")
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert answer.value.code == 503
        assert json.loads(answer.value.read()) == {
            "ready": False,
            "writer": "dead",
            "broker": "not subscribed",
        }
    finally:
        server.shutdown()
        ingester.writer.stop(5)
