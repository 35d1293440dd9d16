"""A type's `training:` block: checked with file, line and field; stored as part of the type's version."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet import machine_types, type_files
from tests.fleet.test_machine_types import SMALL, SMALL_TOML

TRAINING = """\
    training:
      horizon_hours: 48
      min_lead_hours: 6
      precision_target: 0.6
      events: true
"""
T = "machine_types[0].training"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("horizon: 48", f"20: {T}.horizon: unknown key (allowed: events, extremes, horizon_hours,"),
        ("horizon_hours: 0", f"20: {T}.horizon_hours: 0 is out of range: hours ahead a risk"),
        ("horizon_hours: 9000", f"20: {T}.horizon_hours: 9000 is out of range"),
        ("horizon_hours: .inf", f"20: {T}.horizon_hours: inf is not a finite number"),
        ("min_lead_hours: -1", f"20: {T}.min_lead_hours: -1 is out of range"),
        ("horizon_hours: 24\n      min_lead_hours: 24", f"21: {T}.min_lead_hours: 24 must be below"),
        ("precision_target: 1.5", f"20: {T}.precision_target: 1.5 is out of range"),
        ("precision_target: x", f"20: {T}.precision_target: 'x' is not a finite number"),
        ("max_false_alarms: -0.1", f"20: {T}.max_false_alarms: -0.1 is out of range"),
        ("min_history_hours: []", f"20: {T}.min_history_hours: [] is not a finite number"),
        ("events: 1", f"20: {T}.events: 1 must be true or false"),
        ("part_evidence: on-ish", f"20: {T}.part_evidence: 'on-ish' must be true or false"),
    ],
)
def test_a_training_setting_s_problem_names_file_line_and_field(settings: str, expected: str) -> None:
    with pytest.raises(type_files.TypesFileError) as caught:
        type_files.parse(f"{SMALL}    training:\n      {settings}\n", source="f.yaml")
    assert any(str(p).startswith(f"f.yaml:{expected}") for p in caught.value.problems), caught.value.problems


def test_a_training_block_that_is_not_a_mapping_names_its_line() -> None:
    with pytest.raises(type_files.TypesFileError) as caught:
        type_files.parse(SMALL + "    training: [48]\n", source="f.yaml")
    assert str(caught.value) == f"f.yaml:19: {T}: must be a mapping"


def test_a_toml_training_table_s_problem_names_its_line() -> None:
    text = SMALL_TOML + '\n[machine_types.training]\nhorizon_hours = 48\nextremes = "yes"\n'
    with pytest.raises(type_files.TypesFileError) as caught:
        type_files.parse(text, source="f.toml", toml=True)
    assert [str(p) for p in caught.value.problems] == [
        f"f.toml:35: {T}.extremes: 'yes' must be true or false"
    ]


def test_a_type_s_training_settings_are_stored_and_a_change_is_its_next_version(
    engine, tmp_path: Path
) -> None:
    path = tmp_path / "press.yaml"
    path.write_text(SMALL, encoding="utf-8")
    machine_types.apply_file(engine=engine, path=path)
    with engine.connect() as conn:
        assert machine_types.training_settings(conn, "press") == {}
        assert machine_types.training_settings(conn, "lathe") == {}  # no types file defines it
    path.write_text(SMALL + TRAINING, encoding="utf-8")
    assert machine_types.apply_file(engine=engine, path=path) == [machine_types.Applied("press", 2, True)]
    with engine.connect() as conn:
        assert machine_types.training_settings(conn, "press") == {
            "horizon_hours": 48,
            "min_lead_hours": 6,
            "precision_target": 0.6,
            "events": True,
        }
