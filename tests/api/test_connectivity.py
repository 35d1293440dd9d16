"""Connectivity of a machine from its stored messages' arrival times (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api import connectivity
from fleet import migrate, registration, telemetry
from fleet.db import make_engine, session

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
QUIET = timedelta(minutes=30)


def machine_sending(database_url: str, arrivals: list[datetime], *, ts_shift: timedelta = timedelta(0)):  # noqa: ANN201
    """An engine and a machine whose messages arrived at `arrivals` (readings `ts_shift` older)."""
    engine = make_engine(database_url)
    migrate.ensure_schema(engine)
    fleet = [{"tenant": "acme", "machine": "pump-1", "machine_type": "centrifugal_pump"}]
    ((customer_id, machine_id),) = registration.register_machines(engine=engine, machines=fleet).values()
    rows = [
        {
            "customer_id": customer_id,
            "machine_id": machine_id,
            "seq": i + 1,
            "ts": at - ts_shift,
            "readings": {"flow_m3_h": 120.0},
            "received_at": at,
        }
        for i, at in enumerate(sorted(arrivals))
    ]
    if rows:
        with engine.begin() as conn:
            telemetry.insert_telemetry(conn, rows)
    return engine, machine_id


def state(database_url: str, arrivals: list[datetime], **kwargs: object) -> connectivity.Connectivity:
    engine, machine_id = machine_sending(database_url, arrivals, **kwargs)
    with session(engine) as sess:
        return connectivity.of_machine(sess, machine_id, NOW, silent_after=QUIET)


def every_minute(hours: float, *, until: datetime = NOW, step: int = 1) -> list[datetime]:
    return [until - timedelta(minutes=m) for m in range(0, int(hours * 60), step)]


def test_a_machine_sending_at_its_usual_rate_is_online(database_url: str) -> None:
    found = state(database_url, every_minute(25))
    assert (found.state, connectivity.words(found)) == ("online", "online")


def test_a_machine_sending_a_quarter_of_its_usual_rate_is_degraded(database_url: str) -> None:
    day_before = every_minute(24, until=NOW - timedelta(hours=1))
    found = state(database_url, day_before + every_minute(1, step=4))
    assert found.state == "degraded"
    assert connectivity.words(found) == "degraded: 25 % of its usual rate in the last hour"


def test_silence_is_judged_on_arrival_time_not_on_the_readings_time(database_url: str) -> None:
    found = state(database_url, every_minute(2, until=NOW - timedelta(minutes=45)))
    assert connectivity.words(found) == "silent since 2026-11-23 07:15 UTC"


def test_old_readings_that_arrived_just_now_are_no_silence(database_url: str) -> None:
    # a replay, an import of history, a machine whose clock is a month late
    found = state(database_url, every_minute(25), ts_shift=timedelta(days=30))
    assert found.state == "online"


def test_a_machine_that_never_sent_has_no_data() -> None:
    found = connectivity.judge(None, NOW, silent_after=QUIET)
    assert connectivity.words(found) == "no data"
