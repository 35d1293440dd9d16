"""A cold start's time to failure is its limit crossing, never the remaining-life cap it used to store: the
alert queue, the fleet table and the alert's JSON say the crossing, or that there is no failure model yet,
and its alert without a crossing takes its severity from its risk alone (`api/estimate.py`)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from api import estimate, policy
from fleet.db import session
from fleet.tables import Alert, Prediction
from tests.api.support import NOW, World, add_prediction
from tests.console.client import ConsoleClient, sign_in, visible

# As an older cold-start version stored it: the remaining-life model's cap with a band of nothing.
CAP = {"rul_hours": 336.0, "rul_low": 336.0, "rul_high": 336.0}


def _cold_start(world: World, **values: object) -> tuple[int, int]:
    """A cold-start prediction on acme's third pump (alerting at 85 %), through the policy: machine, alert."""
    machine = world.machines["acme"][2]
    prediction = add_prediction(world.engine, machine, risk=0.85, mode="trend:vibration_rms_mm_s")
    with session(world.engine) as sess:
        sess.execute(
            update(Prediction)
            .where(Prediction.id == prediction)
            .values({"status": "cold_start", **CAP, "eta_low": None, "eta_high": None} | values)
        )
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    with session(world.engine) as sess:
        return machine, sess.scalar(select(Alert.id).where(Alert.machine_id == machine))


def _ttf(html: str, row_marker: str) -> str:
    """The time-to-failure text in the table row that holds `row_marker`."""
    row = next(r for r in re.findall(r"<tr.*?</tr>", html, re.S) if row_marker in r)
    return visible(re.search(r'<span class="ttf[^"]*"[^>]*>(.*?)</span>', row, re.S).group(1)).strip()


def test_a_cold_start_alert_and_its_machine_show_the_limit_crossing_not_the_cap(
    client: ConsoleClient, world: World
) -> None:
    crossing = NOW + timedelta(hours=30)
    machine, alert = _cold_start(
        world,
        eta=crossing,
        eta_low=NOW + timedelta(hours=20),
        eta_high=NOW + timedelta(hours=50),
    )
    sign_in(client, world, "tech")

    # The world's clock is 11 days past NOW: the crossing was forecast for a time gone by.
    said = f"limit forecast to be crossed by {estimate.stamp(crossing)} (estimated {estimate.stamp(NOW)})"
    assert _ttf(client.get("/alerts").text, f'data-alert="{alert}"') == said
    assert _ttf(client.get("/fleet").text, f'href="/machines/{machine}"') == said
    out = client.get(f"/api/v1/alerts/{alert}", headers=world.headers("tech")).json()
    assert (out["lead_time_hours"], out["severity"]) == (30.0, "critical")


def test_a_cold_start_alert_without_a_crossing_has_no_lead_time_and_says_no_failure_model_yet(
    client: ConsoleClient, world: World
) -> None:
    machine, alert = _cold_start(world, eta=None, eta_sensor=None)
    sign_in(client, world, "tech")

    assert _ttf(client.get("/alerts").text, f'data-alert="{alert}"') == "no failure model yet"
    assert _ttf(client.get("/fleet").text, f'href="/machines/{machine}"') == "no failure model yet"
    queue = client.get("/api/v1/alerts", headers=world.headers("tech")).json()
    mine = next(a for a in queue if a["id"] == alert)
    # Severity by its risk alone (85 %: critical; 'high' when the cap made a lead time of 336 h), queued
    # after the critical alerts with a lead time and before every less severe one.
    assert (mine["lead_time_hours"], mine["severity"]) == (None, "critical")
    # The evidence beside the alert carries no remaining life either (the stored cap is not read).
    assert (mine["evidence"]["rul_hours"], mine["evidence"]["rul_interval"]) == (None, [None, None])
    order = [(a["severity"], a["lead_time_hours"] is None) for a in queue]
    assert order == sorted(order, key=lambda s: ({"critical": 1, "high": 2, "medium": 3}[s[0]], s[1]))
    assert [a["severity"] for a in queue[: queue.index(mine)]] == ["critical"] * queue.index(mine)
    assert queue.index(mine) >= 1  # the world's critical alerts with a lead time of 24 h come first
