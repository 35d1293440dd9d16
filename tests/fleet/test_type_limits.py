"""A types file's limits and words agree with themselves and the telemetry contract, or name their line."""

from __future__ import annotations

import pytest

from fleet import type_files
from tests.fleet.test_machine_types import S0, S1, SMALL, T

LONG = "x" * 2**21  # a 2 MB display name
PRESSURE = "{name: pressure_bar, unit: bar, range: [0, 400]}"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "warning: 70",
            "warning: -5",
            f"f.yaml:9: {S0}.warning: -5 lies outside the expected range [0, 120]",
        ),
        (
            "alarm: 80",
            "alarm: 121.5",
            f"f.yaml:10: {S0}.alarm: 121.5 lies outside the expected range [0, 120]",
        ),
        (
            PRESSURE,
            PRESSURE.replace("]}", "], warning: 20, alarm: -1, bad: low}"),
            f"f.yaml:12: {S1}.alarm: -1 lies outside the expected range [0, 400]",
        ),
        (
            "display_name: Hydraulic press",
            f"display_name: {LONG}",
            f"f.yaml:3: {T}.display_name: has 2,097,152 characters, more than 200",
        ),
        (
            "display_name: hydraulic pump",
            f"display_name: {'p' * 201}",
            f"f.yaml:14: {T}.components[0].display_name: has 201 characters, more than 200",
        ),
        (
            "the pump wears: oil runs hotter",
            "w" * 4001,
            f"f.yaml:16: {T}.failure_modes[0].description: has 4,001 characters, more than 4,000",
        ),
        ("text: oil hot", f"text: {LONG}", f"f.yaml:18: {T}.codes[0].text: has 2,097,152 characters"),
        ("unit: °C", f"unit: {'u' * 33}", f"f.yaml:6: {S0}.unit: has 33 characters, more than 32"),
        (
            "code: 17",
            f"code: E{'1' * 64}",
            f"f.yaml:18: {T}.codes[0].code: has more than 64 characters: no event's code can",
        ),
        (
            "name: oil_temp_c",
            "name: oil.temp-c",
            f"f.yaml:5: {S0}.name: 'oil.temp-c' is not a sensor name the telemetry contract takes",
        ),
    ],
)
def test_a_limit_outside_its_range_or_an_absurd_text_is_a_problem_by_line(old: str, new: str, expected: str):
    assert old in SMALL
    with pytest.raises(type_files.TypesFileError) as caught:
        type_files.parse(SMALL.replace(old, new, 1), source="f.yaml")
    problems = [str(p) for p in caught.value.problems]
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_limits_at_the_edges_of_the_range_and_texts_at_their_bounds_are_fine():
    text = SMALL.replace("alarm: 80", "alarm: 120").replace("Hydraulic press", "p" * 200)
    text = text.replace(PRESSURE, PRESSURE.replace("]}", "], warning: 400, alarm: 400, bad: high}"))
    sensors = type_files.parse(text.replace("unit: °C", f"unit: {'u' * 32}"), source="f.yaml")
    assert [s["alarm"] for s in sensors.definitions["press"]["sensors"]] == [120, 400]


def test_a_toml_limit_outside_its_range_names_its_line():
    toml = '[[machine_types]]\nname = "press"\n\n[[machine_types.sensors]]\nname = "t"\nunit = "C"\n'
    toml += 'range = [0, 120]\nwarning = 500\nbad = "high"\n'
    with pytest.raises(type_files.TypesFileError) as caught:
        type_files.parse(toml, source="f.toml", toml=True)
    assert [str(p) for p in caught.value.problems] == [
        f"f.toml:8: {S0}.warning: 500 lies outside the expected range [0, 120]"
    ]
