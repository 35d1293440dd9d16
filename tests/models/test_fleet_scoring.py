"""The scoring loop against a real store (SQLite and PostgreSQL): watermarks, statuses, predictions."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from fleet.db import session
from fleet.tables import ModelVersion, Prediction, ScoreState, Telemetry, utcnow
from fleet.telemetry import insert_telemetry
from models import scoring, versions
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import simulate
from tests.models.fleet_support import PUMP, pump_model


@pytest.fixture
def store(engine):
    """A store with 8 days of 12 machines and 1 day of 3 more (too little history)."""
    big = simulate(FleetConfig(machines=12, days=8, seed=2, step_seconds=3600, failure_rate=20))
    small = simulate(FleetConfig(machines=6, days=1, seed=3, step_seconds=3600, tenants=("tiny",)))
    backfill(big, engine)
    backfill(small, engine)
    engine.pumps = tuple(int((r.machines["machine_type"] == PUMP).sum()) for r in (big, small))
    return engine


def test_score_writes_predictions_and_moves_watermarks(store) -> None:
    version = versions.register(store, model=pump_model(), machine_type=PUMP)
    report = scoring.score_once(engine=store)
    pumps, tiny_pumps = store.pumps
    assert report.machines == pumps + tiny_pumps  # other types wait for a model
    assert report.skipped_no_model == 18 - pumps - tiny_pumps
    with session(store) as sess:
        preds = sess.scalars(select(Prediction)).all()
    by_status = {p.status for p in preds}
    assert by_status <= {"ok", "insufficient_data"}
    tiny = [p for p in preds if p.status == "insufficient_data"]
    assert len(tiny) == tiny_pumps and all(p.risk is None and p.rul_hours is None for p in tiny)
    assert "insufficient data" in tiny[0].explanation
    scored = [p for p in preds if p.status == "ok"]
    assert all(0.0 <= p.risk <= 1.0 and p.model_version == version for p in scored)
    assert all(
        p.contributions and {"sensor", "contribution", "text"} <= set(p.contributions[0]) for p in scored
    )
    assert all(p.rul_low <= p.rul_hours <= p.rul_high for p in scored)

    assert scoring.score_once(engine=store).machines == 0  # nothing new
    mid = min(p.machine_id for p in scored)  # a scored pump: its new telemetry must be rescored
    with store.begin() as conn:
        cid, seq, ts = conn.execute(
            select(Telemetry.customer_id, func.max(Telemetry.seq), func.max(Telemetry.ts))
            .where(Telemetry.machine_id == mid)
            .group_by(Telemetry.customer_id)
        ).one()
        row = {
            "customer_id": cid,
            "machine_id": mid,
            "seq": seq + 1,
            "ts": ts + timedelta(hours=1),
            "readings": {"flow_m3h": 100.0},
            "fw": None,
            "extra": None,
            "received_at": utcnow(),
        }
        insert_telemetry(conn, [row])
    again = scoring.score_once(engine=store)
    assert again.machines == 1
    assert count_predictions(store, mid) == 2
    with session(store) as sess:
        assert sess.get(ScoreState, preds[0].machine_id).last_received_at is not None


def _add_row(engine, machine_id: int, customer_id: int, seq: int, ts) -> None:
    row = {
        "customer_id": customer_id,
        "machine_id": machine_id,
        "seq": seq,
        "ts": ts,
        "readings": {"flow_m3h": 100.0},
        "fw": None,
        "extra": None,
        "received_at": utcnow(),
    }
    with engine.begin() as conn:
        insert_telemetry(conn, [row])


def _due_pumps(engine) -> list[int]:
    due = scoring.due_machines(engine)
    return due.loc[due["machine_type"] == PUMP, "machine_id"].tolist()


def test_one_spoofed_seq_does_not_freeze_the_watermark(store) -> None:
    versions.register(store, model=pump_model(), machine_type=PUMP)
    scoring.score_once(engine=store)
    assert _due_pumps(store) == []
    with store.connect() as conn:
        mid, cid, seq, ts = conn.execute(
            select(
                Telemetry.machine_id, Telemetry.customer_id, func.max(Telemetry.seq), func.max(Telemetry.ts)
            )
            .join(Prediction, Prediction.machine_id == Telemetry.machine_id)
            .group_by(Telemetry.machine_id, Telemetry.customer_id)
            .limit(1)
        ).one()
    _add_row(store, mid, cid, 2**60, ts + timedelta(hours=1))
    assert _due_pumps(store) == [mid]
    scoring.score_once(engine=store)
    assert _due_pumps(store) == []
    # The device's next honest message has a far lower seq: it must still make the machine due.
    _add_row(store, mid, cid, seq + 1, ts + timedelta(hours=2))
    assert _due_pumps(store) == [mid]
    assert scoring.score_once(engine=store).machines == 1


def count_predictions(engine, machine_id: int) -> int:
    """Predictions written for one machine."""
    with session(engine) as sess:
        return sess.scalar(select(func.count()).where(Prediction.machine_id == machine_id))


def test_a_failing_model_falls_back_to_the_anomaly_score(store) -> None:
    broken = copy.deepcopy(pump_model())
    broken.classifier_.models_ = [object()]  # predict_proba missing: the classifier raises
    report = scoring.score_once(engine=store, models={PUMP: ("broken", broken)})
    assert report.statuses["fallback"] == store.pumps[0]
    assert report.statuses["insufficient_data"] == store.pumps[1]
    with session(store) as sess:
        preds = sess.scalars(select(Prediction).where(Prediction.status == "fallback")).all()
    assert all(p.anomaly_score is not None and "no failure model to use" in p.explanation for p in preds)


@pytest.mark.parametrize("artifact", [b"", b"\x80\x05\x95truncated", b"not a pickle"])
def test_an_unloadable_model_of_one_type_leaves_the_other_types_scored(store, artifact: bytes) -> None:
    """A truncated or foreign artifact skips its type's machines with the reason; the pass goes on."""
    broken = versions.register(store, model=pump_model(), machine_type=PUMP)
    versions.register(store, model=pump_model(), machine_type="air_compressor")
    with store.begin() as conn:
        conn.execute(update(ModelVersion).where(ModelVersion.version == broken).values(artifact=artifact))
    report = scoring.score_once(engine=store)
    compressors = int((scoring.due_machines(store)["machine_type"] == "air_compressor").sum())
    assert report.machines > 0 and compressors == 0  # the compressors were scored
    assert report.skipped_no_model >= sum(store.pumps)
    assert f"{PUMP}: model version {broken} cannot be loaded" in report.skipped()
    assert sorted(scoring.due_machines(store)["machine_type"].unique()) == sorted(["cnc_spindle", PUMP])
