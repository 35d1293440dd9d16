"""An offer for a cold start's OEM-limit or trend failure mode, over real HTTP: worded in the customer's
language, naming the sensor as its machine type does."""

from __future__ import annotations

import httpx
import pytest

from api import policy
from api.app import API_PREFIX, create_app
from fleet import machine_types
from simulators.machine_types import TYPES_FILE
from tests.api.support import NOW, add_prediction, build_world
from tests.api.test_read_path import served


@pytest.mark.parametrize(
    ("language", "mode", "words"),
    [
        ("en", "limit:vibration_rms_mm_s", "vibration beyond its OEM limit"),
        ("de", "limit:vibration_rms_mm_s", "vibration über dem OEM-Grenzwert"),
        ("de", "trend:vibration_rms_mm_s", "vibration mit Trend zum Grenzwert"),
        ("de", "anomaly", "ungewöhnliche Messwerte"),
    ],
)
def test_a_cold_start_offer_names_its_failure_in_the_customers_language(
    database_url, language: str, mode: str, words: str
) -> None:
    world = build_world(database_url)
    machine_types.apply_file(engine=world.engine, path=TYPES_FILE)
    machine = world.machines["acme"][2]
    with served(create_app(world.settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        path = f"{API_PREFIX}/catalog/customers/{world.customers['acme']}"
        assert (
            client.put(path, json={"language": language}, headers=world.headers("admin")).status_code == 200
        )
        add_prediction(world.engine, machine, risk=1.0, mode=mode, hours_ahead=240)
        policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
        found = client.get(f"{API_PREFIX}/offers", headers=world.headers("am-acme")).json()
    offer = next(o for o in found if o["machine_id"] == machine)
    assert offer["failure_mode"] == mode
    assert words in offer["reason"], offer["reason"]
    if language == "de":  # no English phrase in a German offer
        assert not any(w in offer["reason"] for w in ("beyond", "trending", "anomaly")), offer["reason"]
