"""A types file declares only alarm and error codes the events contract takes, or names their line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleet import contract, type_files
from ingest import contract as ingest_contract
from ingest.schemas import Event, Rejection
from tests.fleet.test_machine_types import SMALL, T

NOW = datetime(2026, 12, 6, tzinfo=UTC)
# `code: …` as a file writes it → the code it declares (kept as written: -5 and .1 are not numbers here).
REFUSED = {"E 12": "E 12", "-5": "-5", "_E1": "_E1", "E/1": "E/1", "é1": "é1", ".1": ".1", "'E1 '": "E1 "}
TAKEN = {"17": "17", "0101": "0101", "E-1.2:x": "E-1.2:x", "A" * 64: "A" * 64}


def _declared(written: str) -> str:
    """The code a types file declares with `code: written` (its problems raised)."""
    parsed = type_files.parse(SMALL.replace("code: 17", f"code: {written}", 1), source="f.yaml")
    return parsed.definitions["press"]["codes"][0]["code"]


def _event(code: str) -> Event | Rejection:
    """What the ingester makes of an event carrying `code`."""
    payload = contract.encode_event(1, NOW, code)
    return ingest_contract.parse_message(contract.events_topic("acme", "m1"), payload, now=NOW)


@pytest.mark.parametrize(("written", "code"), REFUSED.items())
def test_a_code_the_events_contract_refuses_is_a_problem_by_line(written: str, code: str):
    with pytest.raises(type_files.TypesFileError) as caught:
        _declared(written)
    assert [str(p) for p in caught.value.problems] == [
        f"f.yaml:18: {T}.codes[0].code: {code!r} is not a code the events contract takes "
        "(1 to 64 of [A-Za-z0-9._:-], first a letter or digit): every event with it would be quarantined"
    ]
    assert type(_event(code)) is Rejection


@pytest.mark.parametrize(("written", "code"), TAKEN.items())
def test_a_code_the_events_contract_takes_is_declared_and_ingested(written: str, code: str):
    assert _declared(written) == code
    assert type(_event(code)) is Event
