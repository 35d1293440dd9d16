"""Connectivity of a machine from its stored messages' arrival times (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from api import connectivity, policy, silence
from fleet import migrate, registration, telemetry
from fleet.db import make_engine, session
from fleet.settings import Settings
from fleet.tables import Alert, Telemetry

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


def no_data_alerts(engine) -> list[tuple[str, str | None]]:  # noqa: ANN001
    with session(engine) as sess:
        found = sess.scalars(select(Alert).where(Alert.failure_mode == silence.MODE).order_by(Alert.id)).all()
        return [(a.status, (a.evidence or {}).get("explanation")) for a in found]


def policy_pass(engine, database_url: str, now: datetime) -> None:  # noqa: ANN001
    settings = Settings(database_url=database_url, machine_silent_after_min=30)
    policy.run_once(engine=engine, settings=settings, now=now)


def test_a_live_machine_gone_silent_gets_one_no_data_alert_resolved_on_data(database_url: str) -> None:
    engine, machine_id = machine_sending(database_url, every_minute(2, until=NOW - timedelta(minutes=45)))
    policy_pass(engine, database_url, NOW - timedelta(minutes=20))  # quiet 25 min: not yet silent
    assert no_data_alerts(engine) == []
    policy_pass(engine, database_url, NOW)
    policy_pass(engine, database_url, NOW + timedelta(minutes=5))  # one open per machine, not one a pass
    explanation = "No message has arrived since 2026-11-23 07:15 UTC (silent after 30 min)."
    assert no_data_alerts(engine) == [("open", explanation)]
    back = NOW + timedelta(minutes=10)
    row = {"machine_id": machine_id, "seq": 1000, "ts": back, "readings": {}, "received_at": back}
    with engine.begin() as conn:
        customer_id = conn.scalar(select(Alert.customer_id))
        telemetry.insert_telemetry(conn, [{"customer_id": customer_id, **row}])
    policy_pass(engine, database_url, back + timedelta(minutes=1))
    returned = "No data from 2026-11-23 07:15 UTC until a message arrived at 2026-11-23 08:10 UTC."
    assert no_data_alerts(engine) == [("resolved", returned)]


def readings_taken_at(engine, times: list[datetime]) -> None:  # noqa: ANN001
    """Set the readings' own times of messages 1, 2, … (their arrival times stay)."""
    with engine.begin() as conn:
        for seq, at in enumerate(times, start=1):
            conn.execute(update(Telemetry).where(Telemetry.seq == seq).values(ts=at))


def test_backfilled_history_is_no_live_machine_and_raises_no_no_data_alert(database_url: str) -> None:
    # a backfill or import: readings of three hours that all arrived at one time, two days ago
    arrived = NOW - timedelta(days=2)
    engine, _ = machine_sending(database_url, [arrived] * 3)
    readings_taken_at(engine, [arrived - timedelta(hours=h) for h in (3, 2, 1)])
    policy_pass(engine, database_url, NOW)
    assert no_data_alerts(engine) == []


def test_a_replay_sent_in_one_burst_raises_no_no_data_alert(database_url: str) -> None:
    # six hourly readings sent within six seconds (as the demo's live hours are), then nothing
    burst = sorted(NOW - timedelta(hours=2, seconds=s) for s in range(6))
    engine, _ = machine_sending(database_url, burst)
    readings_taken_at(engine, [at - timedelta(hours=6 - i) for i, at in enumerate(burst)])
    policy_pass(engine, database_url, NOW)
    assert no_data_alerts(engine) == []
