"""Connectivity of a machine from its stored messages' arrival times (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, bindparam, func, select, update

from api import alerts, auth, connectivity, policy, silence
from fleet import errors, registration, telemetry
from fleet.db import session
from fleet.settings import Settings
from fleet.tables import Alert, Label, Telemetry

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
QUIET = timedelta(minutes=30)


def machine_sending(engine: Engine, arrivals: list[datetime], *, ts_shift: timedelta = timedelta(0)) -> int:
    """A machine whose messages arrived at `arrivals` (readings `ts_shift` older); returns its id."""
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
    return machine_id


def state(engine: Engine, arrivals: list[datetime], **kwargs: object) -> connectivity.Connectivity:
    machine_id = machine_sending(engine, arrivals, **kwargs)
    with session(engine) as sess:
        return connectivity.of_machine(sess, machine_id, NOW, silent_after=QUIET, degraded_below=0.5)


def every_minute(hours: float, *, until: datetime = NOW, step: int = 1) -> list[datetime]:
    return [until - timedelta(minutes=m) for m in range(0, int(hours * 60), step)]


def test_a_machine_sending_at_its_usual_rate_is_online(engine: Engine) -> None:
    found = state(engine, every_minute(25))
    assert (found.state, connectivity.words(found)) == ("online", "online")


def test_a_machine_sending_a_quarter_of_its_usual_rate_is_degraded(engine: Engine) -> None:
    day_before = every_minute(24, until=NOW - timedelta(hours=1))
    found = state(engine, day_before + every_minute(1, step=4))
    assert found.state == "degraded"
    assert connectivity.words(found) == "degraded: 25 % of its usual rate in the last hour"


def test_days_backfilled_at_once_do_not_make_a_live_machine_look_degraded(engine: Engine) -> None:
    # an import two hours ago of three days of minute readings (one arrival time), then live data
    imported = [NOW - timedelta(hours=2)] * (3 * 24 * 60)
    machine_id = machine_sending(engine, imported + every_minute(1))
    readings_taken_at(engine, [NOW - timedelta(hours=1, minutes=m + 1) for m in range(len(imported))])
    with session(engine) as sess:
        found = connectivity.of_machine(sess, machine_id, NOW, silent_after=QUIET, degraded_below=0.5)
    assert found.state == "online"  # counted by arrival, the day before would hold three days of readings


def test_silence_is_judged_on_arrival_time_not_on_the_readings_time(engine: Engine) -> None:
    found = state(engine, every_minute(2, until=NOW - timedelta(minutes=45)))
    assert connectivity.words(found) == "silent since 2026-11-23 07:15 UTC"


def test_old_readings_that_arrived_just_now_are_no_silence(engine: Engine) -> None:
    # a replay, an import of history, a machine whose clock is a month late
    found = state(engine, every_minute(25), ts_shift=timedelta(days=30))
    assert found.state == "online"


def test_a_machine_that_never_sent_has_no_data() -> None:
    found = connectivity.judge(None, NOW, silent_after=QUIET)
    assert connectivity.words(found) == "no data"


def no_data_alerts(engine) -> list[tuple[str, str | None]]:  # noqa: ANN001
    with session(engine) as sess:
        found = sess.scalars(select(Alert).where(Alert.failure_mode == silence.MODE).order_by(Alert.id)).all()
        return [(a.status, (a.evidence or {}).get("explanation")) for a in found]


def policy_pass(engine: Engine, now: datetime, **settings: object) -> policy.PolicyReport:
    url = engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, machine_silent_after_min=30, **settings)
    return policy.run_once(engine=engine, settings=settings, now=now)


def test_a_live_machine_gone_silent_gets_one_no_data_alert_resolved_on_data(engine: Engine) -> None:
    machine_id = machine_sending(engine, every_minute(2, until=NOW - timedelta(minutes=45)))
    policy_pass(engine, NOW - timedelta(minutes=20))  # quiet 25 min: not yet silent
    assert no_data_alerts(engine) == []
    policy_pass(engine, NOW)
    policy_pass(engine, NOW + timedelta(minutes=5))  # one open per machine, not one a pass
    explanation = "No message has arrived since 2026-11-23 07:15 UTC (silent after 30 min)."
    assert no_data_alerts(engine) == [("open", explanation)]
    back = NOW + timedelta(minutes=10)
    row = {"machine_id": machine_id, "seq": 1000, "ts": back, "readings": {}, "received_at": back}
    with engine.begin() as conn:
        customer_id = conn.scalar(select(Alert.customer_id))
        telemetry.insert_telemetry(conn, [{"customer_id": customer_id, **row}])
    policy_pass(engine, back + timedelta(minutes=1))
    returned = "No data from 2026-11-23 07:15 UTC until a message arrived at 2026-11-23 08:10 UTC."
    assert no_data_alerts(engine) == [("resolved", returned)]


def readings_taken_at(engine, times: list[datetime]) -> None:  # noqa: ANN001
    """Set the readings' own times of messages 1, 2, … (their arrival times stay)."""
    to = update(Telemetry).where(Telemetry.seq == bindparam("n")).values(ts=bindparam("at"))
    with engine.begin() as conn:  # one executemany: thousands of rows in one test
        conn.execute(to, [{"n": seq, "at": at} for seq, at in enumerate(times, start=1)])


def test_backfilled_history_is_no_live_machine_and_raises_no_no_data_alert(engine: Engine) -> None:
    # a backfill or import: readings of three hours that all arrived at one time, two days ago
    arrived = NOW - timedelta(days=2)
    machine_sending(engine, [arrived] * 3)
    readings_taken_at(engine, [arrived - timedelta(hours=h) for h in (3, 2, 1)])
    policy_pass(engine, NOW)
    assert no_data_alerts(engine) == []


def test_a_replay_sent_in_one_burst_raises_no_no_data_alert(engine: Engine) -> None:
    # six hourly readings sent within six seconds (as the demo's live hours are), then nothing
    burst = sorted(NOW - timedelta(hours=2, seconds=s) for s in range(6))
    machine_sending(engine, burst)
    readings_taken_at(engine, [at - timedelta(hours=6 - i) for i, at in enumerate(burst)])
    policy_pass(engine, NOW)
    assert no_data_alerts(engine) == []


def test_a_no_data_alert_takes_no_component_finding_and_makes_no_training_label(engine: Engine) -> None:
    machine_sending(engine, every_minute(2, until=NOW - timedelta(minutes=45)))
    policy_pass(engine, NOW)
    user, _ = auth.create_user(engine=engine, name="tech", role="field_service")
    tech = auth.Principal(user.id, user.name, user.role, None)
    with session(engine) as sess:
        alert = sess.scalar(select(Alert).where(Alert.failure_mode == silence.MODE))
        alerts.acknowledge(sess, alert, tech, NOW)
    for finding in ("confirmed_fault", "replaced_before_failure"):  # a failed or replaced part: none here
        with pytest.raises(errors.InvalidInput, match="not about a part"), session(engine) as sess:
            alert = sess.scalar(select(Alert).where(Alert.failure_mode == silence.MODE))
            alerts.resolve(
                sess, alert, finding=finding, text=None, parts_used=[], by=tech, now=NOW, component="pump"
            )
    with session(engine) as sess:
        alert = sess.scalar(select(Alert).where(Alert.failure_mode == silence.MODE))
        text = "the site's router was switched off"
        alerts.resolve(sess, alert, finding="other", text=text, parts_used=[], by=tech, now=NOW)
    with session(engine) as sess:
        assert sess.scalar(select(Alert.status).where(Alert.failure_mode == silence.MODE)) == "resolved"
        assert sess.scalar(select(func.count()).select_from(Label)) == 0  # silence is no failure label


def rate_alerts(engine) -> list[tuple[str, str, str]]:  # noqa: ANN001
    with session(engine) as sess:
        mode = connectivity.LOW_DATA_RATE
        found = sess.scalars(select(Alert).where(Alert.failure_mode == mode).order_by(Alert.id)).all()
        return [(a.status, a.severity, a.evidence["explanation"]) for a in found]


def test_a_live_machine_sending_a_quarter_of_its_rate_gets_a_low_data_rate_alert(engine: Engine) -> None:
    day_before = every_minute(24, until=NOW - timedelta(hours=1))
    machine_id = machine_sending(engine, day_before + every_minute(1, step=4))
    report = policy_pass(engine, NOW, machine_degraded_below=0.2)
    assert report.low_rate_opened == 0  # 25 % is above this threshold
    policy_pass(engine, NOW + silence.RATE_EVERY)  # the default threshold: below half
    policy_pass(engine, NOW + silence.RATE_EVERY * 2)  # one open alert, not one a pass
    # at 08:05 the last hour holds 14 of the every-4-minutes messages, the day before 1,436 readings
    opened = (
        "Only 23 % of its usual rate arrived in the hour before 2026-11-23 08:05 UTC (degraded below 50 %)."
    )
    assert rate_alerts(engine) == [("open", "medium", opened)]
    back = [NOW + timedelta(minutes=m) for m in range(1, 61)]  # every minute again for an hour
    with session(engine) as sess:
        customer_id = sess.scalar(select(Alert.customer_id))
    rows = [
        {
            "customer_id": customer_id,
            "machine_id": machine_id,
            "seq": 10_000 + i,
            "ts": at,
            "readings": {},
            "received_at": at,
        }
        for i, at in enumerate(back)
    ]
    with engine.begin() as conn:
        telemetry.insert_telemetry(conn, rows)
    report = policy_pass(engine, back[-1], machine_degraded_below=0.2)
    assert report.low_rate_resolved == 1
    assert rate_alerts(engine) == [
        ("resolved", "medium", f"{opened} Back to its usual rate at 2026-11-23 09:00 UTC.")
    ]


def test_a_replayed_day_at_a_quarter_rate_raises_no_low_data_rate_alert(engine: Engine) -> None:
    # the same counts, but the last hour's messages came in one burst: no live machine, no alert
    day_before = every_minute(24, until=NOW - timedelta(hours=1))
    burst = [NOW - timedelta(seconds=s) for s in range(15)]
    machine_sending(engine, day_before + burst)
    with engine.begin() as conn:  # the burst's readings were taken four minutes apart in the last hour
        for i in range(15):
            taken = NOW - timedelta(hours=1) + timedelta(minutes=4 * i + 1)
            conn.execute(update(Telemetry).where(Telemetry.seq == len(day_before) + 1 + i).values(ts=taken))
    policy_pass(engine, NOW)
    assert rate_alerts(engine) == []
