"""The console tests' world: the API test world plus a month of 1-minute telemetry and a risk history."""

from __future__ import annotations

import math
import pickle
from datetime import timedelta

from sqlalchemy import select

from fleet import telemetry
from fleet.db import session
from fleet.tables import Machine, ModelVersion, Prediction
from tests.api.support import NOW, World, build_world

MONTH_MINUTES = 30 * 24 * 60
MODEL_VERSION = "test-1"
# The trend forecaster's limit for the key sensor: 60 % above its usual level.
VIBRATION_LIMIT = 0.6


def build_console_world(database_url: str, **settings: object) -> World:
    """build_world's customers, users, alerts and offers; acme's first machine gets 30 days of readings."""
    world = build_world(database_url, **settings)
    machine_id = world.machines["acme"][0]
    with session(world.engine) as sess:
        machine = sess.get(Machine, machine_id)
        customer_id = machine.customer_id
        sess.add(
            ModelVersion(
                version=MODEL_VERSION,
                machine_type=machine.machine_type,
                kind="fleet",
                params={"trend_limits": {"vibration_rms_mm_s": VIBRATION_LIMIT}},
                metrics={"threshold": 0.5},
                artifact=pickle.dumps(None),
                active=True,
            )
        )
        _risk_history(sess, customer_id, machine_id)
    start = NOW - timedelta(minutes=MONTH_MINUTES)
    with world.engine.begin() as conn:
        for first in range(0, MONTH_MINUTES, 10_000):
            rows = [
                _reading(customer_id, machine_id, i, start + timedelta(minutes=i))
                for i in range(first, min(first + 10_000, MONTH_MINUTES))
            ]
            telemetry.insert_telemetry(conn, rows)
    return world


def _reading(customer_id: int, machine_id: int, i: int, ts) -> dict:  # noqa: ANN001
    day = i / 1440
    wear = max(0.0, day - 24) * 0.08  # vibration starts to climb six days before the end
    readings = {
        "vibration_rms_mm_s": round(2.0 + wear + 0.15 * math.sin(i / 37.0), 4),
        "temperature_c": round(61.0 + 4 * math.sin(2 * math.pi * day) + wear * 3, 3),
        "flow_m3_h": round(118.0 + 3 * math.cos(2 * math.pi * day), 3),
    }
    return {
        "customer_id": customer_id,
        "machine_id": machine_id,
        "seq": i + 1,
        "ts": ts,
        "readings": readings,
        "received_at": ts,
    }


def _risk_history(sess, customer_id: int, machine_id: int) -> None:  # noqa: ANN001
    """Hourly predictions over the month, rising with the wear, then the alerting one as the newest."""
    latest = sess.scalars(select(Prediction).where(Prediction.machine_id == machine_id)).all()
    for hour in range(30 * 24, 0, -1):
        day = 30 - hour / 24
        risk = min(0.95, 0.05 + max(0.0, day - 24) * 0.15)
        sess.add(
            Prediction(
                customer_id=customer_id,
                machine_id=machine_id,
                ts=NOW - timedelta(hours=hour),
                status="ok",
                horizon_hours=168.0,
                risk=risk,
                failure_mode="bearing_wear",
                model_version=MODEL_VERSION,
            )
        )
    for prediction in latest:  # the policy's prediction again, newest, with the forecast's band
        sess.add(
            Prediction(
                **{
                    c: getattr(prediction, c)
                    for c in (
                        "customer_id machine_id ts status horizon_hours risk failure_mode rul_hours rul_low "
                        "rul_high eta eta_sensor contributions explanation model_version"
                    ).split()
                },
                eta_low=prediction.eta - timedelta(hours=10),
                eta_high=prediction.eta + timedelta(hours=16),
            )
        )
