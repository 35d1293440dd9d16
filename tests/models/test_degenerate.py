"""Degenerate fleets: a first real fleet is small and messy; training and scoring must cope with it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import typer
from sqlalchemy import Engine, select
from typer.testing import CliRunner, Result

from api.app import create_app
from fleet import labels, machine_types, registry, telemetry
from fleet.tables import Machine, Prediction, Telemetry
from ingest import contract
from models import cli as models_cli
from models import cold_start, limits, scoring, training, versions
from models.training import train_from_store
from servicecast import evaluate_cli
from simulators.machine_types import TYPES_FILE
from tests.api.support import build_world
from tests.console.client import ConsoleClient, sign_in
from tests.models.fleet_support import FAST, PUMP

# Tests (and their SQLite and PostgreSQL cases) that store the same fleet train the same models: fitted once.
pytestmark = pytest.mark.usefixtures("trainings_once")

T0 = datetime(2026, 1, 5, tzinfo=UTC)
Readings = Callable[[int, int], dict | None]  # None: no message that hour


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
            if readings(m, h) is not None
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


def _models_cli(engine: Engine, monkeypatch) -> Callable[[list[str]], Result]:  # noqa: ANN001
    """The models commands (`train`, `score`, ...) as the CLI runs them, against `engine`."""
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", str(engine.url))
    app = typer.Typer()
    models_cli.register(app)
    return lambda args: CliRunner().invoke(app, args)


def _predictions(engine: Engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(Prediction.machine_id, Prediction.status, Prediction.risk)).all()


def test_failures_too_few_to_fit_a_failure_model_give_a_cold_start_version(sqlite_engine) -> None:
    # Ten days of three pumps, two failures of one of them: every row before the held-out window is
    # within a week of a failure or too close to the end to be known healthy, so no failure model can be
    # fitted; a "model" of the base rate would say risk 1.0 for every pump.
    _store(sqlite_engine, machines=3, hours=240, failures=[(0, 100), (0, 200)])
    report = train_from_store(sqlite_engine, machine_type=PUMP, holdout_days=7.0, min_failures=2, **FAST)

    assert report.cold_start == (PUMP,), report.comparisons
    assert report.notes[PUMP].startswith("too few usable failure labels: 2, but before the held-out")
    (live,) = [v for v in versions.list_versions(sqlite_engine, PUMP) if v.active]
    assert live.kind == "cold_start"
    scoring.score_once(engine=sqlite_engine)
    scored = _predictions(sqlite_engine)
    assert len(scored) == 3 and {s for _, s, _ in scored} == {cold_start.STATUS}
    assert all(r is not None and r < cold_start.THRESHOLD for _, _, r in scored)


def test_imported_failure_history_and_a_first_reading_per_machine_give_a_cold_start_version(engine) -> None:
    # Onboarding: years of service history imported, then each machine's first message, all at once.
    history = [(m, -24 * (30 + k)) for m in range(3) for k in range(4)]
    _store(engine, machines=3, hours=1, failures=history)
    report = train_from_store(engine, machine_type=PUMP, holdout_days=7.0, min_failures=5, **FAST)

    assert report.cold_start == (PUMP,) and report.notes[PUMP].startswith("no telemetry before the held-out")
    (live,) = [v for v in versions.list_versions(engine, PUMP) if v.active]
    assert live.kind == "cold_start" and live.metrics["failure_labels"] == 12


def _every_other_message(machine: int, hour: int) -> dict:
    """`_steady`'s sensors in turns, one per message (as a bridge publishing value changes sends them);
    pump 0's vibration beyond the OEM alarm limit (7.1 mm/s) over the last four hours."""
    values = _steady(machine, hour) | ({"vibration_rms_mm_s": 9.0} if machine == 0 and hour >= 236 else {})
    name = "temperature_c" if hour % 2 else "vibration_rms_mm_s"
    return {name: values[name]}


def test_sensors_sent_in_turns_still_reach_the_cold_start_limits(sqlite_engine) -> None:
    machine_types.apply_file(engine=sqlite_engine, path=TYPES_FILE)
    ids = _store(sqlite_engine, machines=4, hours=240, readings=_every_other_message)
    report = train_from_store(sqlite_engine, machine_type=PUMP, holdout_days=7.0, min_failures=5, **FAST)
    assert report.cold_start == (PUMP,)

    scoring.score_once(engine=sqlite_engine)
    scored = {m: (s, r) for m, s, r in _predictions(sqlite_engine)}
    assert scored[ids[0]] == (cold_start.STATUS, limits.ALARM_RISK)
    assert all(s == cold_start.STATUS and r < cold_start.THRESHOLD for s, r in map(scored.get, ids[1:]))


def _wearing(machine: int, hour: int) -> dict:
    """`_steady`, with vibration rising over the two days before each of a pump's failures (`FAILURES`)."""
    values = _steady(machine, hour)
    ahead = [f - hour for m, f in FAILURES if m == machine and 0 <= f - hour <= 48]
    rise = (48 - min(ahead)) / 10 if ahead else 0.0
    return values | {"vibration_rms_mm_s": values["vibration_rms_mm_s"] + rise}


# Four pumps for 20 days, two failures each in the first 15: none in the held-out window (the last 5 days).
FAILURES = [(m, h) for m in range(4) for h in (150 + 20 * m, 290 + 10 * m)]
SHORT = FAST | {"horizon_hours": 48.0}


def test_a_held_out_window_without_failures_activates_no_candidate_unless_forced(engine) -> None:
    _store(engine, machines=4, hours=480, failures=FAILURES, readings=_wearing)
    args = {"machine_type": PUMP, "holdout_days": 7.0, "min_failures": 2}
    first = train_from_store(engine, **args, **SHORT)
    champion = first.versions[PUMP]
    assert versions.active_versions(engine)[PUMP] == champion and not first.cold_start

    again = train_from_store(engine, **args, **SHORT)
    comparison = again.comparisons[PUMP]
    assert comparison["candidate"]["failures"] == 0 and comparison["champion"]["version"] == champion
    assert not comparison["at_least_as_good"] and not comparison["forced"]
    assert comparison["reason"].startswith("no failure in the held-out window")
    assert versions.active_versions(engine)[PUMP] == champion
    stored = {v.version: v for v in versions.list_versions(engine, PUMP)}[again.versions[PUMP]]
    assert stored.comparison["evidence"] is False and not stored.active

    forced = train_from_store(engine, **args, force=True, **SHORT)
    assert forced.comparisons[PUMP]["forced"]
    assert versions.active_versions(engine)[PUMP] == forced.versions[PUMP]


def test_the_admin_page_says_a_candidate_was_refused_for_want_of_failures_not_as_worse(tmp_path) -> None:
    world = build_world(f"sqlite:///{tmp_path / 'console.db'}")
    champion = versions.register(world.engine, model={"w": 1}, machine_type=PUMP)
    window = {"start": "2026-01-20T00:00:00+00:00", "end": "2026-01-27T00:00:00+00:00"}
    figures = {"f1": 0.0, "failures": 0}
    comparison = {
        "metric": "alert_episode_f1",
        "window": window,
        "candidate": figures,
        "champion": figures | {"version": champion},
        "at_least_as_good": False,
        "evidence": False,
        "forced": False,
    }
    versions.register(world.engine, model={"w": 2}, machine_type=PUMP, comparison=comparison, activate=False)
    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "admin")
        page = client.get("/admin").text
    assert f"0.00 vs 0.00 of {champion}, 2026-01-20 – 2026-01-27 · no failure in the window: refused" in page


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
    for option, value in (("--machines", "0"), ("--step-seconds", "7")):
        wrong = runner.invoke(app, ["evaluate", "--train-days", "5", *out, option, value])
        assert wrong.exit_code == 2 and not isinstance(wrong.exception, ValueError), wrong.exception


def test_train_names_a_type_whose_machines_sent_nothing_yet(sqlite_engine, monkeypatch) -> None:
    run = _models_cli(sqlite_engine, monkeypatch)
    _store(sqlite_engine, machines=2, hours=6)
    registry.add_machine(engine=sqlite_engine, tenant="acme", code="c0", machine_type="air_compressor")

    result = run(["train"])
    assert result.exit_code == 0, result.output
    assert f"{PUMP}: {PUMP}-" in result.output
    assert "air_compressor: not trained (no telemetry from its 1 pooled machines yet)" in result.output


def _loud_first(machine: int, hour: int) -> dict:
    """`_steady`, with pump 0 at 6 mm/s over the last four hours: past the file's warning (4.5) only."""
    values = _steady(machine, hour)
    return values | {"vibration_rms_mm_s": 6.0} if machine == 0 and hour >= 236 else values


def test_a_cold_start_version_alerts_on_the_oem_limits_the_types_file_gives_now(
    sqlite_engine, tmp_path
) -> None:
    machine_types.apply_file(engine=sqlite_engine, path=TYPES_FILE)
    ids = _store(sqlite_engine, machines=3, hours=240, readings=_loud_first)
    train_from_store(sqlite_engine, machine_type=PUMP, holdout_days=7.0, min_failures=5, **FAST)
    # The OEM lowers the pump's vibration alarm limit to 5.5 mm/s after the version was trained.
    lowered = tmp_path / "types.yaml"
    lowered.write_text(TYPES_FILE.read_text(encoding="utf-8").replace("alarm: 7.1", "alarm: 5.5", 1))
    assert machine_types.apply_file(engine=sqlite_engine, path=lowered)[0].changed

    scoring.score_once(engine=sqlite_engine)
    with sqlite_engine.connect() as conn:
        risk, why = conn.execute(
            select(Prediction.risk, Prediction.explanation).where(Prediction.machine_id == ids[0])
        ).one()
    assert risk == limits.ALARM_RISK, why
    assert why == "no failure history yet: vibration 6 mm/s, beyond the OEM alarm limit 5.5 mm/s for 3 h"


def test_readings_stored_twice_under_other_seqs_score_as_once(engine) -> None:
    # A history import derives seqs from times: over a period the pumps also sent live, every reading is
    # stored twice, at the same time under another seq.
    ids = _store(engine, machines=4, hours=480, failures=FAILURES, readings=_wearing)
    train_from_store(engine, machine_type=PUMP, holdout_days=7.0, min_failures=2, **SHORT)
    scoring.score_once(engine=engine)
    once = sorted(_predictions(engine))

    again = [
        {
            "customer_id": customer,
            "machine_id": machine,
            "seq": 10_000 + seq,
            "ts": ts,
            "readings": readings,
            "received_at": datetime.now(UTC),
        }
        for customer, machine, seq, ts, readings in _rows_since(engine, T0 + timedelta(hours=380))
    ]
    with engine.begin() as conn:
        telemetry.insert_telemetry(conn, again)
    with engine.begin() as conn:
        conn.execute(Prediction.__table__.delete())
    assert scoring.score_once(engine=engine).machines == len(ids)
    twice = sorted(_predictions(engine))
    assert [(m, s) for m, s, _ in twice] == [(m, s) for m, s, _ in once]
    np.testing.assert_allclose([r for _, _, r in twice], [r for _, _, r in once], rtol=1e-9)


def _rows_since(engine: Engine, since: datetime) -> list[tuple]:
    columns = (Telemetry.customer_id, Telemetry.machine_id, Telemetry.seq, Telemetry.ts, Telemetry.readings)
    with engine.connect() as conn:
        rows = conn.execute(select(*columns).where(Telemetry.ts >= since)).all()
    return [(c, m, s, t.replace(tzinfo=UTC) if t.tzinfo is None else t, r) for c, m, s, t, r in rows]


def test_train_says_a_cold_start_version_stays_inactive_beside_a_live_failure_model(
    sqlite_engine, monkeypatch
) -> None:
    run = _models_cli(sqlite_engine, monkeypatch)
    monkeypatch.setenv("SERVICECAST_COLD_START_MIN_FAILURES", "100")
    _store(sqlite_engine, machines=4, hours=480, failures=FAILURES, readings=_wearing)
    live = train_from_store(sqlite_engine, machine_type=PUMP, holdout_days=7.0, min_failures=2, **SHORT)

    result = run(["train"])
    assert result.exit_code == 0, result.output
    assert "too few failure labels: 8 of 100" in result.output
    assert f"not activated, active: {live.versions[PUMP]}" in result.output
    assert versions.active_versions(sqlite_engine)[PUMP] == live.versions[PUMP]


def _variant(machine: int, hour: int) -> dict:
    """`_steady`; the pumps between the first and the last also send their declared bearing temperature."""
    values = _steady(machine, hour)
    return values | {"bearing_temp_c": 55.0 + (hour % 24) * 0.1} if 0 < machine < 4 else values


def test_a_declared_sensor_most_machines_send_is_trained_on_whichever_machines_lack_it(sqlite_engine) -> None:
    machine_types.apply_file(engine=sqlite_engine, path=TYPES_FILE)
    _store(sqlite_engine, machines=5, hours=100, readings=_variant)
    report = train_from_store(sqlite_engine, machine_type=PUMP, min_failures=1, **FAST)
    model = versions.load(sqlite_engine, report.versions[PUMP])
    assert "bearing_temp_c" in model.features_.sensors_  # declared, sent by 3 of 5 pumps
    assert "flow_m3h" not in model.features_.sensors_  # declared, sent by none


def _stale_first(machine: int, hour: int) -> dict | None:
    """`_steady`; pump 0's readings (a history import) end after its third day."""
    return None if machine == 0 and hour >= 72 else _steady(machine, hour)


def test_a_machine_with_only_old_readings_does_not_make_the_scorer_read_months_of_the_others(
    sqlite_engine,
) -> None:
    ids = _store(sqlite_engine, machines=3, hours=24 * 60, readings=_stale_first)
    report = train_from_store(sqlite_engine, machine_type=PUMP, min_failures=1, **FAST)
    model = versions.load(sqlite_engine, report.versions[PUMP])
    due = scoring.due_machines(sqlite_engine)
    assert sorted(due["machine_id"]) == ids

    panel = scoring._read_batch(sqlite_engine, (report.versions[PUMP], model, due))
    window = scoring.history_hours(model) + 1  # rows of one machine's window, at one per hour
    assert panel.groupby("machine").size().max() <= window, panel.groupby("machine").size()


def test_event_features_of_codes_no_machine_has_raised_yet_do_not_break_training(sqlite_engine) -> None:
    machine_types.apply_file(engine=sqlite_engine, path=TYPES_FILE)  # declares the pumps' alarm codes
    _store(sqlite_engine, machines=4, hours=480, failures=FAILURES, readings=_wearing)
    report = train_from_store(sqlite_engine, machine_type=PUMP, min_failures=2, events=True, **SHORT)
    model = versions.load(sqlite_engine, report.versions[PUMP])
    assert model.has_failure_model() and model.features_.extras_
    assert scoring.score_once(engine=sqlite_engine).statuses == {"ok": 4}


def test_train_says_why_a_candidate_without_evidence_stays_inactive(sqlite_engine, monkeypatch) -> None:
    run = _models_cli(sqlite_engine, monkeypatch)
    _store(sqlite_engine, machines=4, hours=480, failures=FAILURES, readings=_wearing)

    first = run(["train"])
    assert first.exit_code == 0 and "active; no version was active to compare with" in first.output
    champion = versions.active_versions(sqlite_engine)[PUMP]
    again = run(["train"])
    assert again.exit_code == 0, again.output
    assert f"not activated, active: {champion}; no failure in the held-out window" in again.output
    assert "(--force activates it)" in again.output


def test_score_names_the_types_it_cannot_score_and_what_to_do(sqlite_engine, monkeypatch) -> None:
    run = _models_cli(sqlite_engine, monkeypatch)
    _store(sqlite_engine, machines=2, hours=100)
    compressor = registry.add_machine(
        engine=sqlite_engine, tenant="acme", code="c0", machine_type="air_compressor"
    )
    row = {"customer_id": compressor.customer_id, "machine_id": compressor.id, "seq": 1, "ts": T0}
    with sqlite_engine.begin() as conn:
        telemetry.insert_telemetry(
            conn, [row | {"readings": {"pressure_bar": 7.0}, "received_at": datetime.now(UTC)}]
        )
    train_from_store(sqlite_engine, machine_type=PUMP, min_failures=5, **FAST)

    result = run(["score", "--once"])
    assert result.exit_code == 0, result.output
    assert "scored 2 machines" in result.output
    assert (
        "1 without a model (air_compressor: no version trained yet, run `servicecast train`)" in result.output
    )


@pytest.mark.parametrize(("min_failures", "status"), [(2, "ok"), (100, cold_start.STATUS)])
def test_a_prediction_says_which_of_its_models_sensors_went_silent(engine, min_failures, status) -> None:
    # The types file drops the pumps' vibration sensor and their firmware stops sending it after training.
    ids = _store(engine, machines=4, hours=480, failures=FAILURES, readings=_wearing)
    train_from_store(engine, machine_type=PUMP, holdout_days=7.0, min_failures=min_failures, **SHORT)
    later = [
        {
            "customer_id": customer,
            "machine_id": machine,
            "seq": 480 + h,
            "ts": T0 + timedelta(hours=480 + h),
            "readings": {"temperature_c": _steady(m, 480 + h)["temperature_c"]},
            "received_at": datetime.now(UTC),
        }
        for m, (customer, machine) in enumerate(_customers_of(engine, ids))
        for h in range(30)
    ]
    with engine.begin() as conn:
        telemetry.insert_telemetry(conn, later)
    scoring.score_once(engine=engine)
    with engine.connect() as conn:
        said = conn.execute(select(Prediction.status, Prediction.explanation)).all()
    assert {s for s, _ in said} == {status}
    assert all(text.endswith("; no readings in the last day of vibration rms mm s") for _, text in said), said


def _customers_of(engine: Engine, ids: list[int]) -> list[tuple[int, int]]:
    with engine.connect() as conn:
        owner = dict(conn.execute(select(Machine.id, Machine.customer_id).where(Machine.id.in_(ids))).all())
    return [(owner[i], i) for i in ids]


def test_a_fleet_whose_every_machine_has_too_little_history_scores_as_insufficient(sqlite_engine) -> None:
    # The demo's first pass: half a day of readings, less than any machine's feature lookback.
    machine_types.apply_file(engine=sqlite_engine, path=TYPES_FILE)
    ids = _store(sqlite_engine, machines=3, hours=12)
    train_from_store(sqlite_engine, machine_type=PUMP, holdout_days=0.0, min_failures=5, **FAST)

    assert scoring.score_once(engine=sqlite_engine).machines == len(ids)
    assert {status for _, status, _ in _predictions(sqlite_engine)} == {"insufficient_data"}
