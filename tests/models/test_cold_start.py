"""Cold start: a type without failure labels alerts on the OEM limits, marked "no failure history yet"."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
from sqlalchemy import func, select

from api import policy
from fleet import audit, machine_types, telemetry
from fleet.dialect import ts_texts
from fleet.settings import get_settings
from fleet.tables import Alert, Label, Machine, Telemetry, utcnow
from models import cold_start, limits, scoring, versions
from models.training import train_from_store
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import simulate
from simulators.machine_types import TYPES_FILE
from tests.models.fleet_support import FAST, PUMP, fleet


def _reading_beyond_the_alarm_limit(engine, machine_id: int) -> None:
    """The machine's next reading, an hour after its latest, with the vibration at 7.5 mm/s."""
    with engine.begin() as conn:
        cid, seq, ts, readings = conn.execute(
            select(Telemetry.customer_id, Telemetry.seq, Telemetry.ts, Telemetry.readings)
            .where(Telemetry.machine_id == machine_id)
            .order_by(Telemetry.seq.desc())
            .limit(1)
        ).one()
        readings = json.loads(readings) if isinstance(readings, str) else dict(readings)
        stamps = [t.replace(tzinfo=None) for t in (ts + timedelta(hours=1), utcnow())]
        at, now = ts_texts(np.array(stamps, dtype="datetime64[us]"), engine.dialect)
        row = (
            cid,
            machine_id,
            seq + 1,
            at,
            json.dumps(readings | {"vibration_rms_mm_s": 7.5}),
            None,
            None,
            now,
        )
        assert telemetry.write_rows(conn, [row]) == 1


def test_a_type_without_failure_labels_opens_limit_alerts(engine) -> None:
    machine_types.apply_file(engine=engine, path=TYPES_FILE)
    backfill(simulate(FleetConfig(machines=12, days=8, seed=2, step_seconds=3600, failure_rate=0.0)), engine)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Label).where(Label.kind == "failure")) == 0
        pump = conn.scalar(select(func.min(Machine.id)).where(Machine.machine_type == PUMP))

    report = train_from_store(
        engine, machine_type=PUMP, by=audit.Operator("cli:test"), holdout_days=7.0, **FAST
    )
    assert report.cold_start == (PUMP,) and not report.comparisons
    (live,) = [v for v in versions.list_versions(engine, PUMP) if v.active]
    assert live.kind == "cold_start" and live.threshold == cold_start.THRESHOLD

    settings = get_settings()
    scoring.score_once(engine=engine)
    policy.run_once(engine=engine, settings=settings)

    def limit_alerts() -> list:
        with engine.connect() as conn:
            alerts = conn.execute(select(Alert).where(Alert.machine_id == pump)).all()
        return [a for a in alerts if a.failure_mode == "limit:vibration_rms_mm_s"]

    # One reading beyond the limit is not yet a state of the machine (the on-delay; the anomaly score may
    # alert on it); the next one is, and the machine's alert says so.
    for _ in range(2):
        assert not limit_alerts()
        _reading_beyond_the_alarm_limit(engine, pump)
        assert scoring.score_once(engine=engine).machines == 1
        policy.run_once(engine=engine, settings=settings)

    (alert,) = limit_alerts()
    assert alert.risk == limits.ALARM_RISK and alert.model_version == live.version
    assert alert.evidence["no_failure_history"] is True
    assert alert.evidence["explanation"].startswith(
        "no failure history yet: vibration 7.5 mm/s, beyond the OEM alarm limit 7.1 mm/s for 1 h"
    ), alert.evidence["explanation"]


def test_the_supervised_model_takes_over_once_the_type_has_enough_failure_labels(engine) -> None:
    backfill(fleet(40, 30.0), engine)
    by = audit.Operator("cli:test")
    cold = train_from_store(engine, machine_type=PUMP, by=by, holdout_days=7.0, min_failures=10_000, **FAST)
    assert cold.cold_start == (PUMP,)
    assert versions.active_versions(engine)[PUMP] == cold.versions[PUMP]

    supervised = train_from_store(engine, machine_type=PUMP, by=by, holdout_days=7.0, min_failures=5, **FAST)
    assert supervised.cold_start == () and supervised.comparisons[PUMP]["champion"] is None
    (live,) = [v for v in versions.list_versions(engine, PUMP) if v.active]
    assert live.version == supervised.versions[PUMP] and live.kind == "fleet"
