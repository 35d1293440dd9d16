"""A test-window alert with a visit without finding in its horizon is unjudged, not false (issue 13)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, select

from fleet import audit, labels
from fleet.tables import Machine
from models import versions
from models.evaluate import backtest
from models.training import train_from_store
from simulators.backfill import backfill
from tests.models.fleet_support import FAST, PUMP, fleet
from tests.models.test_degenerate import _models_cli


def _daily(machines: list, since: pd.Timestamp, days: int) -> pd.DataFrame:
    """A visit without finding on every machine every day from `since`: an alert there has one within 24 h."""
    times = [since + pd.Timedelta(days=d) for d in range(days + 1)]
    return pd.DataFrame(
        {"machine": [m for m in machines for _ in times], "ts": times * len(machines)}
    ).assign(machine_type=PUMP)


def _visit_every_day(engine: Engine, start: pd.Timestamp) -> None:
    """Store a visit without finding on every pump every day of the held-out window from `start`."""
    with engine.connect() as conn:
        pumps = conn.execute(
            select(Machine.id, Machine.customer_id).where(Machine.machine_type == PUMP)
        ).all()
    with engine.begin() as conn:
        marks = _daily([m for m, _ in pumps], start, 8)
        customers = dict(pumps)
        rows = [
            {
                "customer_id": customers[m],
                "machine_id": m,
                "ts": ts.to_pydatetime(),
                "kind": "visit",
                "source": "finding",
                "ref": f"test:visit:{m}",
            }
            for m, ts in zip(marks["machine"], marks["ts"], strict=True)
        ]
        assert labels.write(conn, rows) == len(rows)


def test_the_backtest_counts_test_alerts_with_a_visit_and_no_failure_as_unjudged() -> None:
    run = fleet(40, 30.0)
    panel = run.telemetry()
    panel = panel[panel["machine_type"] == PUMP].dropna(axis=1, how="all").reset_index(drop=True)
    split = pd.Timestamp(run.config.start) + pd.Timedelta(days=20)
    before = backtest(panel, run.failures, run.maintenance, split=split, **FAST)
    visits = _daily(sorted(panel["machine"].astype(str).unique()), split, 11)
    after = backtest(panel, run.failures, run.maintenance, split=split, visits=visits, **FAST)

    assert before["types"][PUMP]["threshold"] == after["types"][PUMP]["threshold"]  # no visit before split
    for old, new in (
        (before["pooled"], after["pooled"]),
        (before["types"][PUMP]["test"], after["types"][PUMP]["test"]),
    ):
        assert old["unjudged_alerts"] == 0 and old["false_alarms"] > 0 and old["true_alerts"] > 0
        assert new["unjudged_alerts"] == old["false_alarms"]
        assert (new["alerts"], new["true_alerts"], new["false_alarms"]) == (old["true_alerts"],) * 2 + (0,)
        assert new["precision"] == 1.0 and new["false_alarms_per_machine_month"] == 0.0
        assert new["precursor"] == old["precursor"]  # a false alert caught no failure: recall is the same


def test_champion_challenger_leaves_window_alerts_after_a_visit_without_finding_unjudged(engine) -> None:
    backfill(fleet(40, 30.0), engine)
    by = audit.Operator("cli:test")
    first = train_from_store(engine, machine_type=PUMP, by=by, holdout_days=7.0, **FAST)
    seen = first.comparisons[PUMP]["candidate"]
    false = round(seen["alerts"] * (1 - seen["precision"]))
    assert seen["unjudged_alerts"] == 0 and 0 < false < seen["alerts"]
    _visit_every_day(engine, pd.Timestamp(first.comparisons[PUMP]["window"]["start"]))

    second = train_from_store(engine, machine_type=PUMP, by=by, holdout_days=7.0, **FAST)

    # The champion now is the first run's candidate, judged on the same window: its false alerts had a visit.
    champion = second.comparisons[PUMP]["champion"]
    assert champion["version"] == first.versions[PUMP]
    assert champion["unjudged_alerts"] == false
    assert (champion["alerts"], champion["precision"]) == (seen["alerts"] - false, 1.0)
    assert champion["false_alarms_per_machine_month"] == 0.0 and champion["recall"] == seen["recall"]


def test_train_prints_the_unjudged_alerts_of_both_models_in_its_comparison_line(engine, monkeypatch) -> None:
    backfill(fleet(40, 30.0), engine)
    first = train_from_store(
        engine, machine_type=PUMP, by=audit.Operator("cli:test"), holdout_days=7.0, **FAST
    )
    _visit_every_day(engine, pd.Timestamp(first.comparisons[PUMP]["window"]["start"]))

    ran = _models_cli(engine, monkeypatch)(["train", "--machine-type", PUMP])

    assert ran.exit_code == 0, ran.output
    (second,) = [v for v in versions.list_versions(engine, PUMP) if v.version != first.versions[PUMP]]
    candidate, champion = second.comparison["candidate"], second.comparison["champion"]
    assert champion["version"] == first.versions[PUMP] and champion["unjudged_alerts"] > 0
    # The old line: "(alert_episode_f1 0.… vs 0.… of pump-… on 2026-…..2026-…)", no unjudged alert in it.
    line = f" of {champion['version']} on {second.comparison['window']['start'][:10]}.."
    shown = f"; unjudged alerts {candidate['unjudged_alerts']} vs {champion['unjudged_alerts']})"
    (printed,) = [row for row in ran.output.splitlines() if line in row]
    assert printed.endswith(shown), printed
