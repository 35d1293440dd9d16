"""A quarantine reason gives its times as people read them elsewhere (`2026-11-23 09:05:00 UTC`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from fleet import contract
from fleet.tables import Quarantine
from ingest.contract import parse_message, reading_of
from ingest.pipeline import Pipeline
from ingest.schemas import Rejection
from tests.ingest.support import START, register_fleet

TOPIC = "fleet/acme/m-000/telemetry"
NOW = datetime(2026, 11, 23, 9, 0, 0, 132202, tzinfo=UTC)


def _detail(payload: bytes) -> tuple[str, str]:
    result = parse_message(TOPIC, payload, now=NOW)
    assert isinstance(result, Rejection), result
    return result.reason, result.detail


def test_a_timestamp_out_of_range_names_the_bound_as_people_read_times_and_keeps_its_code() -> None:
    future = contract.encode_payload(1, NOW + timedelta(hours=1), {"t": 1.0})
    assert _detail(future) == (
        "bad_timestamp",
        "ts '2026-11-23T10:00:00.132Z' is in the future (later than 2026-11-23 09:05:00 UTC by our clock)",
    )
    old = contract.encode_payload(1, datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), {"t": 1.0})
    assert _detail(old) == (
        "bad_timestamp",
        "ts '1999-12-31T23:59:59.000Z' is before 2000-01-01 00:00:00 UTC",
    )


def test_a_bridges_timestamp_without_text_reads_as_a_time_too() -> None:
    result = reading_of(TOPIC, 1, NOW + timedelta(days=1), {"t": 1.0}, latest=NOW)
    assert isinstance(result, Rejection)
    assert result.detail == (
        "ts 2026-11-24 09:00:00.132202 UTC is in the future (later than 2026-11-23 09:00:00 UTC by our clock)"
    )


def test_a_reused_seq_names_both_times_as_people_read_them(engine) -> None:
    register_fleet(engine, "acme", ["m-000"])
    pipeline = Pipeline(engine=engine)
    pipeline.store([(TOPIC, contract.encode_payload(1, START, {"t": 1.0}), time.time())])
    later = START + timedelta(seconds=0.25)  # within the same second: the fraction tells the two apart
    pipeline.store([(TOPIC, contract.encode_payload(1, later, {"t": 2.0}), time.time())])
    with engine.connect() as conn:
        reason, detail = conn.execute(select(Quarantine.reason, Quarantine.detail)).one()
    assert reason == "seq_conflict"
    stored = f"{START:%Y-%m-%d %H:%M:%S} UTC"
    this = f"{later:%Y-%m-%d %H:%M:%S}.25 UTC"
    assert f"(stored ts {stored}, this ts {this})" in detail, detail
