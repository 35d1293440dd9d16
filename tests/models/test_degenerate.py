"""Degenerate fleets: a first real fleet is small and messy; training and scoring must cope with it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import typer
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from fleet import labels, registry, telemetry
from fleet.tables import Prediction
from ingest import contract
from models import training, versions
from models.training import train_from_store
from servicecast import evaluate_cli
from tests.models.fleet_support import FAST, PUMP

T0 = datetime(2026, 1, 5, tzinfo=UTC)
Readings = Callable[[int, int], dict]


def _steady(machine: int, hour: int) -> dict:
    """Readings with a daily rhythm and a little noise, the same for every machine."""
    wiggle = np.sin(hour * 0.7 + machine) * 0.2
    return {"temperature_c": 60.0 + (hour % 24) * 0.1 + wiggle, "vibration_rms_mm_s": 2.5 + wiggle / 10}


def _store(
    engine: Engine,
    *,
    machines: int,
    hours: int,
    failures: list[tuple[int, int]] = (),
    readings: Readings = _steady,
) -> list[int]:
    """One customer pooling `machines` pumps with hourly rows; failures as (machine, hour) labels."""
    registry.add_customer(engine=engine, tenant="acme", product_improvement=True)
    ids, customer = [], None
    for m in range(machines):
        machine = registry.add_machine(engine=engine, tenant="acme", code=f"p{m}", machine_type=PUMP)
        customer = machine.customer_id
        ids.append(machine.id)
        rows = [
            {
                "customer_id": customer,
                "machine_id": machine.id,
                "seq": h,
                "ts": T0 + timedelta(hours=h),
                "readings": readings(m, h),
                "received_at": datetime.now(UTC),
            }
            for h in range(hours)
        ]
        with engine.begin() as conn:
            telemetry.insert_telemetry(conn, rows)
    marks = [
        {
            "customer_id": customer,
            "machine_id": ids[m],
            "ts": T0 + timedelta(hours=h),
            "kind": "failure",
            "component": "bearing",
            "mode": "bearing_wear",
            "source": "import",
            "ref": f"history.csv:{k}",
        }
        for k, (m, h) in enumerate(failures)
    ]
    with engine.begin() as conn:
        labels.write(conn, marks)
    return ids


def _predictions(engine: Engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(Prediction.machine_id, Prediction.status, Prediction.risk)).all()


def _wearing(machine: int, hour: int) -> dict:
    """`_steady`, with vibration rising over the two days before each of a pump's failures (`FAILURES`)."""
    values = _steady(machine, hour)
    ahead = [f - hour for m, f in FAILURES if m == machine and 0 <= f - hour <= 48]
    rise = (48 - min(ahead)) / 10 if ahead else 0.0
    return values | {"vibration_rms_mm_s": values["vibration_rms_mm_s"] + rise}


# Four pumps for 20 days, two failures each in the first 15: none in the held-out window (the last 5 days).
FAILURES = [(m, h) for m in range(4) for h in (150 + 20 * m, 290 + 10 * m)]
SHORT = FAST | {"horizon_hours": 48.0}


def _glitch_on_first(machine: int, hour: int) -> dict:
    """`_wearing`, but pump 0's vibration sensor once reports 1e300 (finite: the contract lets it in)."""
    values = _wearing(machine, hour)
    return values | {"vibration_rms_mm_s": 1e300} if (machine, hour) == (0, 100) else values


def test_a_huge_reading_neither_breaks_training_nor_the_other_machines_features(sqlite_engine) -> None:
    body = {"seq": 1, "ts": "2026-01-05T04:00:00Z", "readings": {"vibration_rms_mm_s": 1e300}}
    assert contract.parse_payload(body)[2] == {"vibration_rms_mm_s": 1e300}
    ids = _store(sqlite_engine, machines=4, hours=480, failures=FAILURES, readings=_glitch_on_first)
    report = train_from_store(sqlite_engine, machine_type=PUMP, holdout_days=7.0, min_failures=2, **SHORT)
    assert not report.cold_start

    feats = versions.load(sqlite_engine, report.versions[PUMP]).features_
    panel = training.read_type_panel(sqlite_engine, ids)
    others = panel[panel["machine"] != ids[0]]
    np.testing.assert_allclose(
        feats.transform(panel).loc[others.index].to_numpy(), feats.transform(others).to_numpy(), atol=1e-3
    )


def test_evaluate_on_a_tiny_fleet_reports_instead_of_failing(tmp_path) -> None:
    runner, app = CliRunner(), typer.Typer()
    evaluate_cli.register(app)
    app.command("unused")(lambda: None)  # two commands: Typer then takes the command's name
    out = ["--machines", "3", "--days", "10", "--out", str(tmp_path)]

    tiny = runner.invoke(app, ["evaluate", "--train-days", "5", *out])
    assert tiny.exit_code == 0, tiny.output
    assert "recall>=24h –" in tiny.output and (tmp_path / "report.md").exists()
    for days in ("0", "10"):
        empty = runner.invoke(app, ["evaluate", "--train-days", days, *out])
        assert empty.exit_code == 2 and "--train-days" in empty.output and empty.exception is not None
        assert not isinstance(empty.exception, (ValueError, TypeError)), empty.exception
