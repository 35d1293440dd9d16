"""The admin page's model versions show the alerts left unjudged (a visit without finding within the horizon,
no failure after it) where they show precision: the training window's figures and the champion/challenger
comparison on the held-out window."""

from __future__ import annotations

from api.app import create_app
from models import versions as model_versions
from models.champion import METRIC
from tests.api.support import build_world
from tests.console.client import ConsoleClient, sign_in

WINDOW = {"start": "2026-09-01T00:00:00+00:00", "end": "2026-09-08T00:00:00+00:00"}


def _window_figures(f1: float, precision: float, unjudged: int | None) -> dict:
    """A model's figures on the held-out window, as `champion.window_figures` stores them (None: as a
    version stored before unjudged alerts were counted)."""
    figures = {
        "f1": f1,
        "precision": precision,
        "recall": 0.5,
        "alerts": 9,
        "unjudged_alerts": unjudged,
        "failures": 2,
        "false_alarms_per_machine_month": 0.1,
        "threshold": 0.4,
    }
    return {k: v for k, v in figures.items() if v is not None}


def _comparison(candidate: dict, champion: dict, version: str) -> dict:
    return {
        "metric": METRIC,
        "window": WINDOW,
        "candidate": candidate,
        "champion": champion | {"version": version},
        "at_least_as_good": True,
        "evidence": True,
        "reason": "at least as good on the held-out window",
        "forced": False,
    }


def test_the_admin_page_shows_each_versions_unjudged_alerts_beside_its_precision(world_url) -> None:
    world = build_world(world_url)
    train_alerts = {
        "precision": 0.8,
        "unjudged_alerts": 4,
        "false_alarms_per_machine_month": 0.05,
        "precursor": {"recall_min_lead": 0.6},
    }
    first = model_versions.register(
        world.engine, model={"w": 1}, machine_type="pump", metrics={"train_alerts": train_alerts}
    )
    second = model_versions.register(
        world.engine,
        model={"w": 2},
        machine_type="pump",
        comparison=_comparison(_window_figures(0.6, 0.7, 3), _window_figures(0.55, 0.75, 1), first),
    )
    older = model_versions.register(  # figures stored before unjudged alerts were counted
        world.engine,
        model={"w": 3},
        machine_type="pump",
        comparison=_comparison(_window_figures(0.6, 0.7, None), _window_figures(0.5, 0.7, None), second),
    )

    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "admin")
        page = client.get("/admin")

    assert page.status_code == 200
    # The old page: "precision 0.80 · false alarms per machine-month 0.050"; the comparison without them.
    assert "precision 0.80 · unjudged alerts 4 · false alarms per machine-month 0.050" in page.text
    compared = f"alert episode f1 0.60 vs 0.55 of {first}, 2026-09-01 – 2026-09-08"
    assert f"{compared}, unjudged alerts 3 vs 1 · at least as good" in page.text
    uncounted = f"alert episode f1 0.60 vs 0.50 of {second}, 2026-09-01 – 2026-09-08"
    assert f"{uncounted} · at least as good" in page.text
    assert older in page.text
