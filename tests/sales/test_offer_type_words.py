"""Every failure mode and machine type of the shipped types files has words in every offer language, so a
German offer for an Azure PdM machine reads German, not English or raw names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from api import catalog, policy
from api.app import API_PREFIX
from benchmarks import azure_onboard
from fleet import machine_types, registry
from fleet.db import session
from fleet.tables import Machine, Offer
from simulators.machine_types import TYPES_FILE
from tests.api.support import NOW, add_prediction, build_world

TYPES_FILES = [TYPES_FILE, azure_onboard.TYPES]


def _types(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["machine_types"]


@pytest.mark.parametrize("language", catalog.LANGUAGES)
@pytest.mark.parametrize("path", TYPES_FILES, ids=lambda p: p.parent.name)
def test_every_shipped_failure_mode_and_machine_type_has_words_in_every_language(
    path: Path, language: str
) -> None:
    cat = catalog.default()
    types = _types(path)
    modes = {m["name"] for t in types for m in t["failure_modes"]}
    assert sorted(modes - set(cat.failures[language])) == []
    assert sorted({t["name"] for t in types} - set(cat.machine_types[language])) == []


def test_a_german_offer_for_an_azure_machine_reads_german(database_url) -> None:
    world = build_world(database_url)
    machine_types.apply_file(engine=world.engine, path=azure_onboard.TYPES)
    registry.add_machine(engine=world.engine, tenant="acme", code="azure-17", machine_type="azure_machine")
    with session(world.engine) as sess:
        machine = sess.query(Machine).filter_by(code="azure-17").one().id
    with world.client() as client:
        path = f"{API_PREFIX}/catalog/customers/{world.customers['acme']}"
        assert client.put(path, json={"language": "de"}, headers=world.headers("admin")).status_code == 200
    add_prediction(world.engine, machine, risk=0.75, mode="comp2", hours_ahead=240)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    with session(world.engine) as sess:
        offer = sess.query(Offer).filter_by(machine_id=machine).one()
    assert offer.reason.startswith("azure-17 (Azure-PdM-Maschine) zeigt eine schadhafte Komponente 2;"), (
        offer.reason
    )
    assert not re.search(r"comp\d|component|azure machine|[a-z]+_[a-z]+", offer.reason), offer.reason


@pytest.mark.parametrize(
    ("machine_type", "mode", "words"),
    [
        ("centrifugal_pump", "bearing_wear", "(Kreiselpumpe) zeigt Lagerverschleiß;"),
        ("air_compressor", "clogged_filter", "(Druckluftkompressor) zeigt einen verstopften Ansaugfilter;"),
        ("cnc_spindle", "spindle_crash", "(CNC-Spindel) zeigt einen Spindelcrash;"),
    ],
)
def test_german_offer_texts_name_the_machine_type_and_failure_in_german(
    machine_type: str, mode: str, words: str
) -> None:
    for item in catalog.default().items:
        _, text = catalog.render(
            item,
            language="de",
            machine="M-7",
            machine_type=machine_type,
            mode=mode,
            risk=0.7,
            time_to_failure=None,
            now=NOW,
            price=1000.0,
            value=5000.0,
        )
        assert text.startswith("M-7 " + words), text
