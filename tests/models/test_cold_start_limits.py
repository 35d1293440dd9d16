"""A cold-start version alerts on the OEM limits the type gives now, whatever the history behind a reading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from fleet import machine_types, registry, telemetry
from fleet.tables import Machine, Prediction
from models import cold_start, limits, scoring
from models.training import train_from_store
from simulators.machine_types import TYPES_FILE
from tests.models.fleet_support import FAST, PUMP
from tests.models.test_degenerate import T0, _steady, _store


def _send(engine: Engine, machine_id: int, hours: range, readings: dict) -> None:
    """Hourly rows of one machine from `T0` on, with these readings."""
    with engine.connect() as conn:
        customer = conn.scalar(select(Machine.customer_id).where(Machine.id == machine_id))
    rows = [
        {
            "customer_id": customer,
            "machine_id": machine_id,
            "seq": 10_000 + h,
            "ts": T0 + timedelta(hours=h),
            "readings": readings,
            "received_at": datetime.now(UTC),
        }
        for h in hours
    ]
    with engine.begin() as conn:
        telemetry.insert_telemetry(conn, rows)


def latest_of(engine: Engine, machine_id: int) -> tuple:
    with engine.connect() as conn:
        return conn.execute(
            select(Prediction.status, Prediction.risk, Prediction.explanation)
            .where(Prediction.machine_id == machine_id)
            .order_by(Prediction.id.desc())
            .limit(1)
        ).one()


def _cold_start_pumps(engine: Engine) -> list[int]:
    machine_types.apply_file(engine=engine, path=TYPES_FILE)
    ids = _store(engine, machines=3, hours=240)
    train_from_store(engine, machine_type=PUMP, holdout_days=7.0, min_failures=5, **FAST)
    return ids


def test_a_new_machine_beyond_an_oem_alarm_limit_alerts_before_it_has_a_days_history(sqlite_engine) -> None:
    # A pump connected three hours ago already vibrates at 8 mm/s, past the type's alarm limit (7.1):
    # the limit needs one reading, not the 72 h the anomaly and trend features need. It was scored as
    # "insufficient data", with no risk, so no alert opened.
    _cold_start_pumps(sqlite_engine)
    new = registry.add_machine(engine=sqlite_engine, tenant="acme", code="p-new", machine_type=PUMP).id
    _send(sqlite_engine, new, range(237, 240), _steady(0, 0) | {"vibration_rms_mm_s": 8.0})

    scoring.score_once(engine=sqlite_engine)

    status, risk, why = latest_of(sqlite_engine, new)
    assert (status, risk) == (cold_start.STATUS, limits.ALARM_RISK), why
    # In the type's words and unit, with the reading that crossed the limit.
    assert why.startswith("no failure history yet: vibration 8 mm/s, beyond the OEM alarm limit 7.1 mm/s"), (
        why
    )


def test_a_sensor_renamed_in_the_types_file_keeps_its_oem_limit_alerts(sqlite_engine, tmp_path) -> None:
    # New firmware calls the vibration `vibration_mm_s`; the OEM renames it in the types file, same
    # limits. The scorer read only the sensors the version was trained on, so the renamed sensor's
    # 8 mm/s never reached the limit check: "no readings in the last day of vibration", anomaly risk.
    ids = _cold_start_pumps(sqlite_engine)
    renamed = tmp_path / "types.yaml"
    renamed.write_text(TYPES_FILE.read_text(encoding="utf-8").replace("vibration_rms_mm_s", "vibration_mm_s"))
    assert machine_types.apply_file(engine=sqlite_engine, path=renamed)[0].changed
    _send(sqlite_engine, ids[0], range(240, 244), {"temperature_c": 60.0, "vibration_mm_s": 8.0})

    scoring.score_once(engine=sqlite_engine)

    status, risk, why = latest_of(sqlite_engine, ids[0])
    assert (status, risk) == (cold_start.STATUS, limits.ALARM_RISK), why
    assert why.startswith("no failure history yet: vibration 8 mm/s, beyond the OEM alarm limit 7.1 mm/s"), (
        why
    )


def test_a_sensor_dropped_from_its_type_no_longer_alerts_on_the_limits_it_had(
    sqlite_engine, tmp_path
) -> None:
    # Pump 0's vibration sensor reads 8 mm/s all along (miscalibrated): an alert at the alarm limit
    # (7.1) every pass. The OEM drops the sensor from the type. A dropped sensor keeps its words and unit
    # for the data stored under it, but kept its limits too, and the alert went on.
    v1 = "machine_types:\n  - name: centrifugal_pump\n    sensors:\n      - {name: temperature_c, unit: °C}\n"
    v2 = tmp_path / "v2.yaml"
    v2.write_text(v1, encoding="utf-8")
    (tmp_path / "v1.yaml").write_text(
        v1 + "      - {name: vibration_rms_mm_s, unit: mm/s, warning: 4.5, alarm: 7.1, bad: high}\n",
        encoding="utf-8",
    )
    machine_types.apply_file(engine=sqlite_engine, path=tmp_path / "v1.yaml")
    ids = _store(sqlite_engine, machines=3, hours=240, readings=_miscalibrated)
    train_from_store(sqlite_engine, machine_type=PUMP, holdout_days=7.0, min_failures=5, **FAST)
    scoring.score_once(engine=sqlite_engine)
    assert latest_of(sqlite_engine, ids[0])[1] == limits.ALARM_RISK

    assert machine_types.apply_file(engine=sqlite_engine, path=v2)[0].changed
    _send(sqlite_engine, ids[0], range(240, 244), _miscalibrated(0, 240))
    scoring.score_once(engine=sqlite_engine)

    status, risk, why = latest_of(sqlite_engine, ids[0])
    assert status == cold_start.STATUS and risk < cold_start.THRESHOLD, why
    assert "limit" not in why


def _miscalibrated(machine: int, hour: int) -> dict:
    """`_steady`, with pump 0's vibration reading 8 mm/s throughout."""
    values = _steady(machine, hour)
    return (
        values | {"vibration_rms_mm_s": 8.0 + values["vibration_rms_mm_s"] / 100} if machine == 0 else values
    )
