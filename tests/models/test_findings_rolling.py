"""A rolling review: models retrained every period with the findings technicians recorded by then."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from benchmarks import findings
from fleet.tables import Alert, ModelVersion, Prediction
from tests.models.findings_support import reviewed_run
from tests.models.fleet_support import REVIEW_FAST

# The SQLite and PostgreSQL cases (and reviews that start alike) train the same models: fitted once.
pytestmark = pytest.mark.usefixtures("trainings_once")


@pytest.mark.slow
def test_a_rolling_review_retrains_every_period_and_visits_no_alert_whose_horizon_crosses_the_split(
    engine,
) -> None:
    run, split = reviewed_run()
    found = findings.review(
        run, run.telemetry(), split=split, review_days=25, review_every=10, engine=engine, **REVIEW_FAST
    )

    with engine.connect() as conn:
        trained = conn.execute(
            select(
                ModelVersion.version, ModelVersion.machine_type, ModelVersion.train_end, ModelVersion.metrics
            )
        ).all()
        opened = conn.execute(
            select(Alert.status, Alert.finding, Prediction.ts, Prediction.model_version).join(
                Prediction, Prediction.id == Alert.first_prediction_id
            )
        ).all()
    # Review models trained on days 0-20, 0-30 and 0-40, each opening the alerts of the 10 days after it.
    ends = [split - pd.Timedelta(days=d) for d in (25, 15, 5)]
    types = run.telemetry()["machine_type"].nunique()
    assert found.review_models == 3 and len(trained) == 3 * types
    assert sorted({pd.Timestamp(e) for _, _, e, _ in trained}) == ends
    trained_end = {v: pd.Timestamp(e) for v, _, e, _ in trained}
    for _, _, ts, version in opened:
        assert trained_end[version] <= pd.Timestamp(ts) < trained_end[version] + pd.Timedelta(days=10)
    assert len({version for *_, version in opened}) > types
    # Each later model trained with the findings recorded before its training ended, and no others.
    nf_ts = pd.to_datetime(found.no_faults["ts"], utc=True)
    for _, mtype, end, metrics in trained:
        mine = nf_ts[(found.no_faults["machine_type"] == mtype).to_numpy()]
        assert metrics["no_faults"] == int((mine < pd.Timestamp(end)).sum())
    assert sum(m["no_faults"] for *_, m in trained) > 0
    # Only alerts whose 7-day horizon ends before the split are resolved; later ones stay open.
    horizon = pd.Timedelta(hours=168)
    assert found.no_fault_found == sum(f == "no_fault_found" for _, f, _, _ in opened) > 0
    for status, _, ts, _ in opened:
        assert (status == "resolved") <= (pd.Timestamp(ts) + horizon < split)
    assert any(pd.Timestamp(ts) + horizon >= split for _, _, ts, _ in opened)
    assert found.visited == sum(pd.Timestamp(ts) + horizon < split for _, _, ts, _ in opened)
