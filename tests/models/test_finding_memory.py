"""A machine's memory of its "no fault found" findings: the same columns in training and in the scorer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select

from fleet import labels
from fleet.tables import Machine
from models import event_features
from models.event_features import NO_FAULT_COLUMNS, NO_FAULT_HOURS
from models.training import ground_truth_by_id
from tests.ingest.support import register_fleet

T0 = datetime(2026, 5, 1, tzinfo=UTC)
COUNT, SINCE = NO_FAULT_COLUMNS


def _panel(machines: list, hours: list[float]) -> pd.DataFrame:
    ts = [T0 + timedelta(hours=h) for h in hours]
    return pd.DataFrame({"machine": [m for m in machines for _ in ts], "ts": ts * len(machines)})


def test_the_memory_counts_a_machines_findings_at_or_before_each_row_for_60_days() -> None:
    panel = _panel(["a", "b"], [0, 10, 11, 30, 10 + NO_FAULT_HOURS, 31 + NO_FAULT_HOURS])
    found = pd.DataFrame({"machine": ["a", "a"], "ts": [T0 + timedelta(hours=h) for h in (10, 30)]})
    out = event_features.no_fault_memory(panel, found)
    a, b = out[out["machine"] == "a"], out[out["machine"] == "b"]
    np.testing.assert_array_equal(a[COUNT], [0, 1, 1, 2, 1, 0])  # the finding at 10 h leaves after 60 days
    np.testing.assert_array_equal(a[SINCE], [NO_FAULT_HOURS, 0, 1, 0, NO_FAULT_HOURS - 20, NO_FAULT_HOURS])
    assert (b[COUNT] == 0).all() and (b[SINCE] == NO_FAULT_HOURS).all()  # another machine's findings


def test_the_scorer_reads_from_the_label_store_the_memory_training_computed(engine) -> None:
    register_fleet(engine, "acme", ["m1", "m2"])
    with engine.begin() as conn:
        rows = conn.execute(select(Machine.id, Machine.customer_id).order_by(Machine.code)).all()
        labels.write(
            conn,
            [
                {"customer_id": rows[0][1], "machine_id": rows[0][0], "ts": T0 + timedelta(hours=h)}
                | {"kind": "no_fault", "source": "finding", "ref": f"alert:{h}"}
                for h in (5, 50)
            ],
        )
    panel = _panel([rows[0][0], rows[1][0]], [0, 5, 6, 49, 50, 51, 200])
    trained = event_features.no_fault_memory(panel, ground_truth_by_id(engine).no_faults)
    with engine.connect() as conn:
        scored = event_features.add(conn, panel, NO_FAULT_COLUMNS)
    pd.testing.assert_frame_equal(scored, trained)
    np.testing.assert_array_equal(scored[COUNT].iloc[:7], [0, 1, 1, 1, 2, 2, 2])
    assert (scored[COUNT].iloc[7:] == 0).all()
