"""The telemetry store's fast write path reads back exactly as the ORM would have written it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select, text

from fleet import registration, telemetry
from fleet.db import make_engine, session
from fleet.tables import Customer, Machine, Telemetry
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import simulate
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


def test_backfilled_and_ingested_rows_store_a_missing_extra_alike(engine):
    """Both write through `write_rows`; a running machine's row has SQL NULL extra, not JSON null."""
    run = simulate(FleetConfig(machines=5, days=2, seed=11, step_seconds=3600, failure_rate=150.0))
    backfill(run, engine)
    with engine.connect() as conn:
        tenant, code = conn.execute(
            select(Customer.tenant, Machine.code).join(Customer, Customer.id == Machine.customer_id).limit(1)
        ).one()
        customer_id, machine_id = registration.lookup_machines(conn, [(tenant, code)])[(tenant, code)]
    now = datetime.now(UTC)
    row = {"customer_id": customer_id, "machine_id": machine_id, "seq": 10**6, "ts": now, "readings": {}}
    with engine.begin() as conn:
        assert telemetry.insert_telemetry(conn, [row | {"received_at": now}]) == 1
    with engine.connect() as conn:
        no_extra = conn.scalar(text("SELECT count(*) FROM telemetry WHERE extra IS NULL"))
        running = conn.scalar(text("SELECT count(*) FROM telemetry WHERE seq < 1000000"))
    stopped = sum(1 for state in run.telemetry()["state"] if state != "running")
    assert stopped > 0
    assert no_extra == running - stopped + 1


def test_a_writer_engine_on_sqlite_has_a_larger_cache_and_rarer_checkpoints(tmp_path):
    engine = telemetry.tune_writer(make_engine(f"sqlite:///{tmp_path / 'writer.db'}"))
    with engine.connect() as conn:
        cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        checkpoint = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    engine.dispose()
    assert cache == -telemetry.WRITER_CACHE_KIB
    assert checkpoint == telemetry.WRITER_CHECKPOINT_PAGES
