"""The machine page tells every fact a prediction of each kind carries, and no row for one it does not: a
cold start's mode in words and its limit crossing, readings alone's anomaly score, the model and when it
scored; the alert page says the cold start's the same way (`_macros.html` `risk_of`, `ttf_fact`,
`crossing_fact`)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from api import policy
from fleet import machine_types
from fleet.db import session
from fleet.tables import Alert, Prediction
from simulators.machine_types import TYPES_FILE
from tests.api.support import NOW, World, add_prediction
from tests.console.client import ConsoleClient, sign_in, visible

SCORED = f"scored {NOW:%Y-%m-%d %H:%M} UTC"


def _facts(html: str, prefix: str) -> dict[str, str]:
    """The facts of a page whose ids start with `prefix`, by id, as visible text."""
    dl = re.search(r'<dl class="facts">(.*?)</dl>', html, re.S).group(1)
    rows = re.findall(r'<dt>.*?</dt><dd(?: id="([\w-]+)")?>(.*?)</dd>', dl, re.S)
    return {dd_id: visible(text).strip() for dd_id, text in rows if dd_id.startswith(prefix)}


def _predict(world: World, machine: int, **values: object) -> int:
    prediction = add_prediction(world.engine, machine, risk=0.85, mode="bearing_wear", hours_ahead=30)
    with session(world.engine) as sess:
        sess.execute(update(Prediction).where(Prediction.id == prediction).values(**values))
    return prediction


def test_a_cold_start_trend_shows_its_mode_in_words_and_its_limit_crossing(
    client: ConsoleClient, world: World
) -> None:
    machine_types.apply_file(engine=world.engine, path=TYPES_FILE)
    machine = world.machines["acme"][1]
    # As the cold-start model writes it: its remaining life is the cap (nothing failed to learn from).
    _predict(
        world,
        machine,
        status="cold_start",
        failure_mode="trend:vibration_rms_mm_s",
        rul_hours=336.0,
        rul_low=336.0,
        rul_high=336.0,
        anomaly_score=0.61,
        explanation="no failure history yet: vibration 4.1 mm/s, forecast to cross its limit in 30 h",
    )
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    sign_in(client, world, "tech")

    html = client.get(f"/machines/{machine}").text

    due = NOW + timedelta(hours=30)
    crossing = f"vibration (mm/s) was forecast to reach its limit by {due:%Y-%m-%d %H:%M} UTC"
    facts = _facts(html, "machine-")
    assert facts.pop("machine-risk") == "85 % (no failure history yet) within 7.0 d"
    assert facts.pop("machine-mode") == "vibration trending to its limit"
    assert facts.pop("machine-crossing") == crossing
    assert facts.pop("machine-unusual").startswith("0.61 of 1 unlike its machine type's usual ones")
    assert facts.pop("machine-model").endswith(SCORED)
    assert set(facts) <= {"machine-site", "machine-link"}, facts  # no time to failure from the cap
    assert not re.search(r"cold.start|trend:|vibration_rms", visible(html)), visible(html)
    # The API's prediction says the same: the crossing's time and the mode the page words.
    api = client.get(f"/api/v1/machines/{machine}/predictions", headers=world.headers("tech")).json()
    latest = max(api, key=lambda p: p["id"])
    assert latest["failure_mode"] == "trend:vibration_rms_mm_s"
    assert latest["eta"][:16].replace("T", " ") in _facts(html, "machine-crossing")["machine-crossing"]

    with session(world.engine) as sess:
        alert_id = sess.scalar(select(Alert.id).where(Alert.machine_id == machine))
    alert = _facts(client.get(f"/alerts/{alert_id}").text, "alert-")
    assert alert["alert-risk"] == "85 % (no failure history yet)"
    assert alert["alert-mode"] == "vibration trending to its limit"
    assert "alert-ttf" not in alert, alert
    assert alert["alert-crossing"] == crossing  # the machine page's row, not only the trend line below


def test_a_readings_alone_prediction_shows_its_readings_and_model(
    client: ConsoleClient, world: World
) -> None:
    machine = world.machines["acme"][1]
    _predict(
        world,
        machine,
        status="fallback",
        failure_mode=None,
        rul_hours=336.0,
        eta=None,
        eta_sensor=None,
        anomaly_score=0.834,
        explanation="risk 85 % from its readings alone, no failure model to use: readings 0.83 of 1 unlike …",
    )
    sign_in(client, world, "tech")

    facts = _facts(client.get(f"/machines/{machine}").text, "machine-")

    assert facts.pop("machine-risk") == "85 % (from its readings alone, no failure model to use) within 7.0 d"
    said = "0.83 of 1 unlike its machine type's usual ones (anomaly score; 0: as usual)"
    assert facts.pop("machine-unusual") == said
    assert facts.pop("machine-model").endswith(SCORED)
    assert set(facts) <= {"machine-site", "machine-link"}, facts


def test_insufficient_data_shows_only_its_model_and_when_it_scored(
    client: ConsoleClient, world: World
) -> None:
    machine = world.machines["acme"][1]
    blank = dict.fromkeys(("risk", "failure_mode", "rul_hours", "rul_low", "rul_high", "eta", "eta_sensor"))
    _predict(world, machine, status="insufficient_data", **blank)
    sign_in(client, world, "tech")

    html = client.get(f"/machines/{machine}").text

    facts = _facts(html, "machine-")
    assert facts.pop("machine-model").endswith(SCORED)
    assert facts.pop("machine-risk") == "insufficient data within 7.0 d"
    assert set(facts) <= {"machine-site", "machine-link"}, facts
    assert "Not enough recent telemetry for a prediction yet." in html


def test_an_ok_prediction_shows_every_fact_as_before(client: ConsoleClient, world: World) -> None:
    machine = world.machines["acme"][1]
    _predict(world, machine, anomaly_score=0.2)
    sign_in(client, world, "tech")

    facts = _facts(client.get(f"/machines/{machine}").text, "machine-")

    assert facts["machine-risk"] == "85 % within 7.0 d"
    assert facts["machine-mode"] == "bearing wear"
    assert facts["machine-ttf"].startswith("overdue since")
    assert facts["machine-crossing"].startswith("vibration rms mm s was forecast to reach its limit by")
    assert facts["machine-unusual"].startswith("0.20 of 1")
    assert facts["machine-model"].endswith(SCORED)
