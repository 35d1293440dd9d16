"""Machine types as data: a types file round-trips through the store, errors name their line, versions."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from fleet import audit, errors, machine_types, panels, registry, telemetry, type_files
from fleet.db import session
from fleet.tables import WorkflowEvent
from servicecast.cli import app
from simulators.machine_types import TYPES_FILE

SMALL = """\
machine_types:
  - name: press
    display_name: Hydraulic press
    sensors:
      - name: oil_temp_c
        unit: °C
        display_name: oil temperature
        range: [0, 120]
        warning: 70
        alarm: 80
        bad: high
      - {name: pressure_bar, unit: bar, range: [0, 400]}
    components:
      - {name: pump, display_name: hydraulic pump}
    failure_modes:
      - {name: pump_wear, component: pump, description: "the pump wears: oil runs hotter"}
    codes:
      - {code: 17, severity: warning, text: oil hot}
"""

SMALL_TOML = """\
[[machine_types]]
name = "press"
display_name = "Hydraulic press"

[[machine_types.sensors]]
name = "oil_temp_c"
unit = "°C"
display_name = "oil temperature"
range = [0, 120]
warning = 70
alarm = 80
bad = "high"

[[machine_types.sensors]]
name = "pressure_bar"
unit = "bar"
range = [0, 400]

[[machine_types.components]]
name = "pump"
display_name = "hydraulic pump"

[[machine_types.failure_modes]]
name = "pump_wear"
component = "pump"
description = "the pump wears: oil runs hotter"

[[machine_types.codes]]
code = 17
severity = "warning"
text = "oil hot"
"""


T, S0, S1 = "machine_types[0]", "machine_types[0].sensors[0]", "machine_types[0].sensors[1]"


def _as_file(data: dict) -> dict[str, dict]:
    """What the store must give back for a file: every type minus its simulation block, codes as text."""
    out = {}
    for t in data["machine_types"]:
        t = {k: v for k, v in t.items() if k != "simulation"}
        if "codes" in t:
            t["codes"] = [{**c, "code": str(c["code"])} for c in t["codes"]]
        out[t["name"]] = t
    return out


def test_the_simulated_fleets_file_reads_back_as_written(engine) -> None:
    applied = machine_types.apply_file(engine=engine, path=TYPES_FILE)
    assert {(a.name, a.version, a.changed) for a in applied} == {
        ("centrifugal_pump", 1, True),
        ("air_compressor", 1, True),
        ("cnc_spindle", 1, True),
    }
    expected = _as_file(yaml.safe_load(TYPES_FILE.read_text(encoding="utf-8")))
    with session(engine) as sess:
        stored = {name: machine_types.get(sess, name).definition for name in expected}
    assert stored == expected
    # `types show` prints a types file that applies as no change
    for name, definition in stored.items():
        again = type_files.parse(machine_types.to_yaml(definition), source="show")
        assert again.definitions == {name: definition}
        assert machine_types.apply_definitions(engine=engine, definitions=again.definitions, source="x") == [
            machine_types.Applied(name, 1, changed=False)
        ]


def test_a_toml_file_reads_back_as_written_and_equals_its_yaml_twin(engine, tmp_path: Path) -> None:
    path = tmp_path / "press.toml"
    path.write_text(SMALL_TOML, encoding="utf-8")
    machine_types.apply_file(engine=engine, path=path)
    with session(engine) as sess:
        stored = machine_types.get(sess, "press").definition
    assert stored == _as_file(tomllib.loads(SMALL_TOML))["press"]
    assert stored == type_files.parse(SMALL, source="yaml").definitions["press"]


@pytest.mark.parametrize(
    ("line", "old", "new", "expected"),
    [
        (6, "unit: °C", "unt: °C", f"f.yaml:6: {S0}.unt: unknown key"),
        (6, "unit: °C", "unt: °C", f"f.yaml:5: {S0}.unit: is required"),
        (
            11,
            "bad: high",
            "bad: up",
            f"f.yaml:11: {S0}.bad: 'up' must be one of high, low",
        ),
        (
            10,
            "alarm: 80",
            "alarm: 60",
            f"f.yaml:10: {S0}.alarm: an alarm limit comes after",
        ),
        (12, "range: [0, 400]", "range: [400, 0]", f"f.yaml:12: {S1}.range: low 400"),
        (
            11,
            "bad: high",
            "bad: high\n        alarm_on_delay_s: -5",
            f"f.yaml:12: {S0}.alarm_on_delay_s: -5 must be 0",
        ),
        (
            12,
            "range: [0, 400]}",
            "range: [0, 400], alarm_on_delay_s: 30}",
            f"f.yaml:12: {S1}.alarm_on_delay_s: delays a warning or alarm limit",
        ),
        (
            16,
            "component: pump,",
            "component: valve,",
            f"f.yaml:16: {T}.failure_modes[0].component",
        ),
        (18, "severity: warning", "severity: loud", f"f.yaml:18: {T}.codes[0].severity: 'loud'"),
        (
            12,
            "name: pressure_bar",
            "name: oil_temp_c",
            f"f.yaml:12: {S1}.name: 'oil_temp_c'",
        ),
    ],
)
def test_a_yaml_error_names_file_line_and_field(line: int, old: str, new: str, expected: str) -> None:
    text = SMALL.replace(old, new, 1)
    assert old in SMALL.splitlines()[line - 1] or line == 5  # the case points at the line it edits
    with pytest.raises(type_files.TypesFileError) as caught:
        type_files.parse(text, source="f.yaml")
    assert any(str(p).startswith(expected) for p in caught.value.problems), caught.value.problems


def test_a_sensor_s_alarm_on_delay_reaches_its_spec() -> None:
    text = SMALL.replace("bad: high", "bad: high\n        alarm_on_delay_s: 120", 1)
    specs = machine_types.specs_of(type_files.parse(text, source="f.yaml").definitions["press"])
    assert (specs["oil_temp_c"].alarm_on_delay_s, specs["pressure_bar"].alarm_on_delay_s) == (120, None)


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    text = SMALL.replace("bad: high", "bad: up").replace("severity: warning", "severity: loud")
    with pytest.raises(type_files.TypesFileError) as caught:
        type_files.parse(text, source="f.yaml")
    assert [p.line for p in caught.value.problems] == [11, 18]


def test_yaml_syntax_errors_and_keys_given_twice_name_their_line() -> None:
    with pytest.raises(type_files.TypesFileError, match=r"^f.yaml:8: file: not valid YAML"):
        type_files.parse(
            SMALL.replace("display_name: oil temperature", "display_name: [oil"), source="f.yaml"
        )
    with pytest.raises(
        type_files.TypesFileError, match=r"^f.yaml:7: machine_types\[0\]\.sensors\[0\]\.unit: given"
    ):
        type_files.parse(SMALL.replace("display_name: oil temperature", "unit: K"), source="f.yaml")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('bad = "high"', 'bad = "up"', f"f.toml:12: {S0}.bad: 'up' must be one of"),
        ('unit = "bar"', 'unt = "bar"', f"f.toml:16: {S1}.unt: unknown key"),
        (
            'component = "pump"',
            'component = "valve"',
            f"f.toml:25: {T}.failure_modes[0].component",
        ),
        (
            'severity = "warning"',
            "severity = 3",
            f"f.toml:30: {T}.codes[0].severity: 3 must be one",
        ),
        (
            "range = [0, 400]",
            'range = "wide"',
            f"f.toml:17: {S1}.range: must be [low, high]",
        ),
        ("alarm = 80", "alarm = [", "f.toml:12: file: not valid TOML"),
    ],
)
def test_a_toml_error_names_file_line_and_field(old: str, new: str, expected: str) -> None:
    with pytest.raises(type_files.TypesFileError) as caught:
        type_files.parse(SMALL_TOML.replace(old, new, 1), source="f.toml", toml=True)
    assert any(str(p).startswith(expected) for p in caught.value.problems), caught.value.problems


def test_a_file_with_a_problem_changes_nothing(engine, tmp_path: Path) -> None:
    path = tmp_path / "types.yaml"
    path.write_text(SMALL + SMALL.replace("machine_types:\n", "").replace("name: press", "name: lathe"))
    path.write_text(path.read_text().replace("name: lathe\n", "name: lathe\n    colour: red\n", 1))
    with pytest.raises(type_files.TypesFileError, match="colour: unknown key"):
        machine_types.apply_file(engine=engine, path=path)
    assert machine_types.list_types(engine=engine) == []


def test_the_same_file_twice_is_one_version_and_a_change_is_the_next(engine, tmp_path: Path) -> None:
    path = tmp_path / "press.yaml"
    path.write_text(SMALL, encoding="utf-8")
    assert machine_types.apply_file(engine=engine, path=path) == [machine_types.Applied("press", 1, True)]
    assert machine_types.apply_file(engine=engine, path=path) == [machine_types.Applied("press", 1, False)]
    path.write_text(
        SMALL.replace("display_name: oil temperature", "display_name: oil temp"), encoding="utf-8"
    )
    assert machine_types.apply_file(engine=engine, path=path) == [machine_types.Applied("press", 2, True)]
    [listed] = machine_types.list_types(engine=engine)
    assert (listed.name, listed.version) == ("press", 2)
    with session(engine) as sess:
        assert machine_types.get(sess, "press", 1).sensors["oil_temp_c"].label == "oil temperature (°C)"
        assert machine_types.get(sess, "press").sensors["oil_temp_c"].label == "oil temp (°C)"
        # The type exists: the answer names its versions, not "apply a types file first".
        with pytest.raises(
            machine_types.MachineTypeNotFound, match=r"^machine type 'press' has versions 1 to 2"
        ):
            machine_types.get(sess, "press", 3)


def test_a_sensor_removed_from_a_type_keeps_its_data_and_its_words(engine, tmp_path: Path) -> None:
    path = tmp_path / "press.yaml"
    path.write_text(SMALL, encoding="utf-8")
    machine_types.apply_file(engine=engine, path=path)
    registry.add_customer(engine=engine, tenant="acme", name="Acme", by=audit.Operator("test"))
    machine = registry.add_machine(engine=engine, tenant="acme", code="press-1", machine_type="press")
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [
        {
            "customer_id": machine.customer_id,
            "machine_id": machine.id,
            "seq": i,
            "ts": start + timedelta(minutes=10 * i),
            "readings": {"oil_temp_c": 50.0 + i, "pressure_bar": 200.0},
            "received_at": start + timedelta(minutes=10 * i),
        }
        for i in range(3)
    ]
    with engine.begin() as conn:
        telemetry.insert_telemetry(conn, rows)
    # version 2 drops oil_temp_c
    path.write_text(
        SMALL.replace("range: [0, 120]", "range: [0, 130]").replace("- name: oil_temp_c", "- name: oil_t")
    )
    assert machine_types.apply_file(engine=engine, path=path) == [machine_types.Applied("press", 2, True)]
    with engine.connect() as conn:
        names = panels.sensor_names(conn, machine_ids=[machine.id])
        panel = panels.read_panel(conn, machine_ids=[machine.id], since=start, sensors=names)
        specs = machine_types.sensor_specs(conn, "press")
    assert set(names) == {"oil_temp_c", "pressure_bar"}
    assert panel["oil_temp_c"].tolist() == [50.0, 51.0, 52.0]
    assert specs["oil_temp_c"].label == "oil temperature (°C)" and specs["oil_temp_c"].alarm == 80
    assert specs["oil_t"].high == 130
    [(_, listed)] = registry.list_machines(engine=engine, tenant="acme")
    assert listed.machine_type == "press"


def test_the_types_commands_apply_list_show_and_refuse_a_bad_file(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, ["types", *args])

    good = tmp_path / "press.yaml"
    good.write_text(SMALL, encoding="utf-8")
    first = run("apply", str(good))
    assert first.exit_code == 0, first.output
    assert first.output == "press\tversion 1\tnew version\n"
    assert run("apply", str(good)).output == "press\tversion 1\tunchanged\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.replace("bad: high", "bad: up"), encoding="utf-8")
    refused = run("apply", str(bad))
    assert refused.exit_code == 1
    assert f"{bad}:11: {S0}.bad: 'up' must be one of high, low" in refused.output
    assert "press\tversion 1\t2 sensors\t1 failure mode" in run("list").output
    shown = run("show", "press")
    assert shown.exit_code == 0
    assert type_files.parse(shown.output, source="show").definitions == _as_file(yaml.safe_load(SMALL))
    missing = run("show", "lathe")
    assert missing.exit_code == 1 and "no machine type 'lathe'" in missing.output


def test_the_readmes_example_is_a_valid_types_file_and_its_error_is_the_one_printed() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Machine types") :]
    example = section[section.index("```yaml\n") + 8 : section.index("```\n", section.index("```yaml"))]
    assert list(type_files.parse(example, source="types.yaml").definitions) == ["centrifugal_pump"]
    with pytest.raises(type_files.TypesFileError) as caught:
        type_files.parse(example.replace("bad: high", "bad: up"), source="types.yaml")
    [problem] = caught.value.problems
    assert f"`{problem}`" in section


def test_alarm_codes_are_kept_as_written_even_where_yaml_reads_a_number() -> None:
    for written in ("0101", "0x1F", "17", "E-17"):
        parsed = type_files.parse(SMALL.replace("code: 17", f"code: {written}"), source="f.yaml")
        assert parsed.definitions["press"]["codes"][0]["code"] == written


def test_two_applies_racing_for_the_same_next_version_store_one_and_refuse_the_other(
    engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "press.yaml"
    path.write_text(SMALL, encoding="utf-8")
    machine_types.apply_file(engine=engine, path=path)
    # the second apply read the versions before the first one committed: it saw none
    monkeypatch.setattr(machine_types, "_latest_row", lambda sess, name: None)
    path.write_text(SMALL.replace("oil temperature", "oil temp"), encoding="utf-8")
    with pytest.raises(errors.AlreadyExists, match="apply again"):
        machine_types.apply_file(engine=engine, path=path)
    monkeypatch.undo()
    [listed] = machine_types.list_types(engine=engine)
    assert (listed.version, listed.sensors["oil_temp_c"].words) == (1, "oil temperature")


def test_registering_a_machine_of_a_type_not_defined_yet_says_how_to_define_it(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    runner = CliRunner()
    assert runner.invoke(app, ["customers", "add", "acme"]).exit_code == 0
    early = runner.invoke(app, ["machines", "add", "acme", "press-1", "--type", "press"])
    assert early.exit_code == 0 and "machine acme/press-1 added" in early.output
    assert "machine type 'press' is not defined yet: servicecast types apply FILE" in early.output
    path = tmp_path / "press.yaml"
    path.write_text(SMALL, encoding="utf-8")
    assert runner.invoke(app, ["types", "apply", str(path)]).exit_code == 0
    later = runner.invoke(app, ["machines", "add", "acme", "press-2", "--type", "press"])
    assert later.exit_code == 0 and "not defined" not in later.output


def test_each_new_version_is_in_the_audit_trail_with_who_applied_it(engine, tmp_path: Path) -> None:
    path = tmp_path / "press.yaml"
    path.write_text(SMALL, encoding="utf-8")
    alice = audit.Operator("cli:alice")
    machine_types.apply_file(engine=engine, path=path, by=alice)
    machine_types.apply_file(engine=engine, path=path, by=alice)  # unchanged: nothing to record
    path.write_text(SMALL.replace("oil temperature", "oil temp"), encoding="utf-8")
    machine_types.apply_file(engine=engine, path=path, by=audit.Operator("cli:bob"))
    with session(engine) as sess:
        rows = sess.scalars(
            select(WorkflowEvent).where(WorkflowEvent.subject == "machine_type").order_by(WorkflowEvent.id)
        ).all()
        trail = [(r.action, r.actor, r.data["name"], r.data["version"], r.data["source"]) for r in rows]
    assert trail == [
        ("applied", "cli:alice", "press", 1, str(path)),
        ("applied", "cli:bob", "press", 2, str(path)),
    ]


@pytest.mark.parametrize("digits", [400, 5000])
@pytest.mark.parametrize("toml", [False, True])
def test_a_limit_too_large_for_a_float_is_a_problem_with_its_line_not_a_crash(
    digits: int, toml: bool
) -> None:
    # 400 digits: past the largest float; 5000: past the 4,300 digits Python turns into an int at all
    huge = "9" * digits
    text = (SMALL_TOML.replace("alarm = 80", f"alarm = {huge}") if toml else SMALL).replace(
        "alarm: 80", f"alarm: {huge}"
    )
    source = "f.toml" if toml else "f.yaml"
    with pytest.raises(type_files.TypesFileError) as caught:
        type_files.parse(text, source=source, toml=toml)
    [problem] = caught.value.problems
    field = "file" if toml and digits == 5000 else f"{S0}.alarm"  # tomllib says nothing of where
    assert str(problem) == f"{source}:{11 if toml else 10}: {field}: a number of {digits} digits is too large"


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("2026-02-30", "'2026-02-30' is not a valid timestamp (day is out of range for month); quote it if"),
        ("2026-13-01 10:00:00", "'2026-13-01 10:00:00' is not a valid timestamp (month must be in 1..12)"),
        ('!!int "abc"', "'abc' is not a valid int (invalid literal for int() with base 10: 'abc')"),
        ('!!timestamp "soon"', "'soon' is not a valid timestamp"),
    ],
)
def test_a_value_yaml_parses_but_cannot_build_is_a_problem_with_its_line_and_field(
    written: str, reason: str
) -> None:
    text = SMALL.replace("display_name: Hydraulic press", f"display_name: {written}")
    with pytest.raises(type_files.TypesFileError) as caught:
        type_files.parse(text, source="f.yaml")
    [problem] = caught.value.problems
    assert str(problem).startswith(f"f.yaml:3: {T}.display_name: {reason}")


def test_a_yaml_merge_key_s_values_may_be_overridden_but_a_key_given_twice_is_still_a_problem() -> None:
    text = SMALL.replace(
        "      - {name: pressure_bar, unit: bar, range: [0, 400]}",
        "      - &gauge {name: pressure_bar, unit: bar, range: [0, 400]}\n"
        "      - {<<: *gauge, name: return_pressure_bar, range: [0, 40]}",
    )
    sensors = type_files.parse(text, source="f.yaml").definitions["press"]["sensors"]
    assert sensors[2] == {"name": "return_pressure_bar", "unit": "bar", "range": [0, 40]}
    with pytest.raises(
        type_files.TypesFileError, match=r"^f.yaml:13: machine_types\[0\]\.sensors\[2\]\.unit: given"
    ):
        type_files.parse(
            text.replace("range: [0, 40]}", "range: [0, 40], unit: mbar, unit: Pa}"), source="f.yaml"
        )
