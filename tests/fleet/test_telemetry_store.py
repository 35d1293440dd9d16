"""The telemetry store's fast write path reads back exactly as the ORM would have written it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from fleet import telemetry
from fleet.db import session
from fleet.tables import Machine, Telemetry
from tests.ingest.support import register_fleet


def test_rows_round_trip_and_are_idempotent(engine):
    register_fleet(engine, "acme", ["m-000"])
    with session(engine) as sess:
        machine = sess.scalar(select(Machine))
    base = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    cet = timezone(timedelta(hours=1))
    rows = [
        {
            "customer_id": machine.customer_id,
            "machine_id": machine.id,
            "seq": seq,
            # One timestamp arrives with a +01:00 offset; it must be stored as the same instant in UTC.
            "ts": (base + timedelta(seconds=seq)).astimezone(cet if seq == 2 else UTC),
            "readings": {"temperature_c": 60.0 + seq, "state_code": None},
            "fw": "1.0" if seq == 1 else None,
            "extra": {"note": "ü"} if seq == 3 else None,
            "received_at": base + timedelta(seconds=seq, milliseconds=5),
        }
        for seq in (1, 2, 3)
    ]
    with engine.begin() as conn:
        assert telemetry.insert_telemetry(conn, rows) == 3
    with engine.begin() as conn:
        assert telemetry.insert_telemetry(conn, rows[1:]) == 0

    with session(engine) as sess:
        stored = list(sess.scalars(select(Telemetry).order_by(Telemetry.seq)))
        window = list(
            sess.scalars(
                select(Telemetry.seq).where(
                    Telemetry.ts >= base + timedelta(seconds=2), Telemetry.ts < base + timedelta(seconds=3)
                )
            )
        )
    assert [r.ts for r in stored] == [base + timedelta(seconds=s) for s in (1, 2, 3)]
    assert all(r.ts.tzinfo is not None for r in stored)
    assert stored[0].readings == {"temperature_c": 61.0, "state_code": None}
    assert (stored[0].fw, stored[2].extra) == ("1.0", {"note": "ü"})
    assert stored[1].extra is None
    assert window == [2]
