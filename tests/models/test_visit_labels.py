"""A visit without finding: training knows nothing of the horizon before it, as past the end of the data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select

from api import alerts, auth, policy
from fleet import audit, labels
from fleet.db import session
from fleet.tables import Alert, Telemetry
from models.labels import make_targets, unjudged, within
from models.training import train_from_store
from tests.api.support import add_prediction
from tests.models.findings_support import backfilled_world, labelled_rows, pooled_pump_without_labels
from tests.models.fleet_support import FAST, PUMP

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_a_visit_without_finding_censors_the_rows_whose_horizon_holds_it():
    ts = pd.date_range(T0, periods=96, freq="h")
    panel = pd.DataFrame({"machine": ["a"] * 96 + ["b"] * 96 + ["c"] * 96, "ts": list(ts) * 3})
    failures = pd.DataFrame(
        {"machine": ["b"], "ts": [ts[40]], "mode": ["seal_leak"], "has_precursor": [True]}
    )
    visits = pd.DataFrame({"machine": ["a", "b", "c"], "ts": [ts[30], ts[36], ts[30]]})
    no_faults = pd.DataFrame({"machine": ["c"], "ts": [ts[30]]})
    before = within(make_targets(panel, failures, no_faults=no_faults), 24)
    after = within(make_targets(panel, failures, no_faults=no_faults, visits=visits), 24)
    lost = before[1] & ~after[1]
    # a: rows 7..30 hold the visit within 24 h (row 6's horizon ends at it): unknown now, the rest as before.
    assert list(np.flatnonzero(lost[:96])) == list(range(7, 31))
    # b: rows 16..40 stay positive (the failure happened, whatever the visit did); 13..15 become unknown.
    assert list(np.flatnonzero(lost[96:192])) == list(range(13, 16))
    # c: a "no fault found" at the visit says what it saw: those rows stay known negatives.
    assert not lost[192:].any()
    assert (after[0] == before[0]).all()
    # A backtest up to `until` does not see a visit after it.
    hidden = within(make_targets(panel, failures, visits=visits, until=ts[29]), 24)
    assert (hidden[1] == within(make_targets(panel, failures, until=ts[29]), 24)[1]).all()


def test_an_alert_with_a_visit_without_finding_in_its_horizon_is_not_judged():
    starts = pd.Series(pd.to_datetime([T0, T0 + timedelta(days=10), T0], utc=True))
    found = pd.DataFrame({"machine": ["a", "a", "b"], "start": starts})
    visits = pd.DataFrame({"machine": ["a", "b"], "ts": [T0 + timedelta(hours=24), T0 - timedelta(hours=1)]})
    assert unjudged(found, visits, 168.0).tolist() == [True, False, False]
    assert unjudged(found.iloc[:0], visits, 168.0).tolist() == []


def test_an_alert_resolved_other_is_a_visit_label_that_the_next_training_reads(database_url):
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    world = backfilled_world(database_url, now)
    operator = audit.Operator("cli:test")
    first = train_from_store(world.engine, machine_type=PUMP, by=operator, **FAST)
    horizon, visit = timedelta(hours=168), now - timedelta(days=9)
    machine = pooled_pump_without_labels(world.engine, visit - 2 * horizon, visit + 2 * horizon)
    add_prediction(world.engine, machine, risk=0.9, mode="seal_leak", hours_ahead=48)
    policy.run_once(engine=world.engine, settings=world.settings, now=visit)
    user, _ = auth.create_user(engine=world.engine, name="visiting tech", role="field_service")
    tech = auth.Principal(user.id, user.name, user.role, None)
    with session(world.engine) as sess:
        alert = sess.scalar(select(Alert).where(Alert.machine_id == machine))
        alerts.acknowledge(sess, alert, tech, visit)
        text = "cleaned the strainer and tightened the coupling"
        alerts.resolve(sess, alert, finding="other", text=text, parts_used=[], by=tech, now=visit)
        alert_id = alert.id
    with world.engine.connect() as conn:
        found = labels.read(conn, ref=f"alert:{alert_id}")
        window = conn.execute(
            select(Telemetry.ts).where(
                Telemetry.machine_id == machine, Telemetry.ts > visit - horizon, Telemetry.ts <= visit
            )
        ).all()
    assert found[["kind", "source", "mode", "component"]].to_dict("records") == [
        {"kind": "visit", "source": "finding", "mode": "seal_leak", "component": ""}
    ]

    second = train_from_store(world.engine, machine_type=PUMP, by=operator, **FAST)

    before, after = labelled_rows(world.engine, first, second)
    # The machine's rows whose horizon held the visit were known negatives (its horizon ended days before
    # the data did); the visit may have repaired what the alert saw, so each of them is unknown now.
    assert len(window) == 168
    assert after == {"positive": before["positive"], "negative": before["negative"] - len(window)}
