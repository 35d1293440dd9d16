"""Console words and limits come from the machine type: display names, units, the OEM limit on charts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from fleet import machine_types
from tests.api.support import NOW, World
from tests.console.seed import build_console_world

PUMP_TYPE = """\
machine_types:
  - name: centrifugal_pump
    sensors:
      - {name: vibration_rms_mm_s, unit: mm/s, display_name: vibration, warning: 4.5, alarm: 7.1, bad: high}
      - {name: temperature_c, unit: °C, display_name: casing temperature}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_console_world(f"sqlite:///{tmp_path_factory.mktemp('types') / 'console.db'}")


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.settings)) as client:
        client.app.state.clock = lambda: NOW  # the world's time: its forecasts are still to come
        response = client.post("/login", data={"api_key": world.tokens["tech"]})
        assert response.status_code == 200
        yield client


def _captions(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", c).strip() for c in re.findall(r"<figcaption>(.*?)</figcaption>", html, re.S)]


def test_charts_and_evidence_name_sensors_and_limits_as_the_type_says(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    machine, alert = world.machines["acme"][0], world.alerts["acme"][0]
    before = client.get(f"/machines/{machine}").text
    assert "vibration rms mm s — key sensor" in _captions(before)  # no type yet: the name spelled out
    assert "limit (+60 % on its usual level)" in before  # and the learned limit
    assert "OEM" not in before

    path = tmp_path / "pump.yaml"
    path.write_text(PUMP_TYPE, encoding="utf-8")
    machine_types.apply_file(engine=world.engine, path=path)
    page = client.get(f"/machines/{machine}").text
    assert _captions(page)[:1] == ["vibration (mm/s) — key sensor"]
    assert {"casing temperature (°C)", "flow m3 h"} <= set(_captions(page))  # flow: not in the type
    assert "OEM alarm limit 7.1 mm/s" in page and "limit (+60 % on its usual level)" not in page
    assert re.search(r"Forecast: vibration \(mm/s\) reaches its limit 7\.1 around", page)
    assert '<dd id="machine-crossing">vibration (mm/s) around' in page
    evidence = client.get(f"/alerts/{alert}").text
    assert '<th scope="row">vibration (mm/s)</th>' in evidence
    assert "<strong>vibration (mm/s)</strong> reaches its limit" in evidence

    # version 2 drops the temperature sensor: its readings still chart, under the words it had
    path.write_text(PUMP_TYPE.split("      - {name: temperature_c")[0], encoding="utf-8")
    assert machine_types.apply_file(engine=world.engine, path=path)[0].version == 2
    assert "casing temperature (°C)" in _captions(client.get(f"/machines/{machine}").text)
