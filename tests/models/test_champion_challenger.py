"""Champion and challenger: `train` activates a candidate only if it alerts at least as well (or forced)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from api.app import create_app
from fleet import audit
from fleet.tables import ModelVersion, WorkflowEvent
from models import versions
from models.training import train_from_store
from simulators.backfill import backfill
from tests.api.support import build_world
from tests.console.client import ConsoleClient, sign_in
from tests.models.fleet_support import FAST, PUMP, fleet

# Tests (and their SQLite and PostgreSQL cases) that store the same fleet train the same models: fitted once.
pytestmark = pytest.mark.usefixtures("trainings_once")

# A 2-hour horizon alerts too late to reach the 24 h lead that the comparison's recall asks for.
WORSE = FAST | {"horizon_hours": 2.0}


def _actions(engine, action: str) -> list[WorkflowEvent]:
    with engine.connect() as conn:
        return conn.execute(select(WorkflowEvent).where(WorkflowEvent.action == action)).all()


def test_a_worse_candidate_is_registered_but_not_activated_unless_forced(engine) -> None:
    backfill(fleet(40, 30.0), engine)
    by = audit.Operator("cli:test")
    first = train_from_store(engine, machine_type=PUMP, by=by, holdout_days=7.0, **FAST)
    champion = first.versions[PUMP]
    assert first.comparisons[PUMP]["champion"] is None and first.comparisons[PUMP]["at_least_as_good"]
    assert versions.active_versions(engine)[PUMP] == champion

    worse = train_from_store(engine, machine_type=PUMP, by=by, holdout_days=7.0, **WORSE)
    comparison = worse.comparisons[PUMP]
    assert comparison["champion"]["version"] == champion
    assert comparison["candidate"]["f1"] < comparison["champion"]["f1"]
    assert not comparison["at_least_as_good"] and not comparison["forced"]
    assert versions.active_versions(engine)[PUMP] == champion
    stored = {v.version: v for v in versions.list_versions(engine, PUMP)}
    candidate = stored[worse.versions[PUMP]]
    assert not candidate.active and candidate.comparison == comparison
    assert candidate.threshold == candidate.metrics["threshold"]
    (refused,) = _actions(engine, "not_promoted")
    assert refused.data["comparison"]["champion_version"] == champion and not refused.data["forced"]

    forced = train_from_store(engine, machine_type=PUMP, by=by, holdout_days=7.0, force=True, **WORSE)
    assert forced.comparisons[PUMP]["forced"]
    assert versions.active_versions(engine)[PUMP] == forced.versions[PUMP]
    promoted = [e for e in _actions(engine, "promoted") if e.after == {"active": forced.versions[PUMP]}]
    assert promoted[0].actor == "cli:test" and promoted[0].data["forced"] is True


def test_the_admin_page_shows_the_comparison_stored_with_a_version(database_url) -> None:
    world = build_world(database_url)
    champion = _register(world.engine, comparison=None)
    window = {"start": "2026-01-20T00:00:00+00:00", "end": "2026-01-27T00:00:00+00:00"}
    comparison = {
        "metric": "alert_episode_f1",
        "window": window,
        "candidate": {"f1": 0.41},
        "champion": {"f1": 0.67, "version": champion},
        "at_least_as_good": False,
        "forced": False,
    }
    _register(world.engine, comparison=comparison)
    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "admin")
        page = client.get("/admin").text
    assert f"alert episode f1 0.41 vs 0.67 of {champion}, 2026-01-20 – 2026-01-27 · worse: refused" in page


def _register(engine, *, comparison: dict | None) -> str:
    return versions.register(
        engine, model={"w": 1}, machine_type="pump", comparison=comparison, activate=False
    )


def test_a_damaged_champion_is_replaced_by_the_candidate_and_the_comparison_says_why(sqlite_engine) -> None:
    """A champion whose artifact cannot be loaded scores nothing: the candidate goes live, named as such."""
    backfill(fleet(40, 30.0), sqlite_engine)
    by = audit.Operator("cli:test")
    first = train_from_store(sqlite_engine, machine_type=PUMP, by=by, holdout_days=7.0, **FAST)
    damaged = first.versions[PUMP]
    with sqlite_engine.begin() as conn:
        conn.execute(update(ModelVersion).where(ModelVersion.version == damaged).values(artifact=b"\x80\x05"))

    report = train_from_store(sqlite_engine, machine_type=PUMP, by=by, holdout_days=7.0, **WORSE)
    comparison = report.comparisons[PUMP]
    assert comparison["champion"] is None and comparison["at_least_as_good"]
    assert f"model version {damaged} cannot be loaded" in comparison["reason"]
    assert versions.active_versions(sqlite_engine)[PUMP] == report.versions[PUMP] != damaged
