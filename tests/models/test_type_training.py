"""`servicecast train` trains each type with its `training:` settings, over the fleet-wide ones."""

from __future__ import annotations

from pathlib import Path

import yaml

from fleet import machine_types
from models import versions
from simulators.machine_types import TYPES_FILE
from tests.models.fleet_support import PUMP
from tests.models.test_degenerate import FAILURES, _models_cli, _store, _wearing

TRAINING = {"horizon_hours": 48.0, "min_lead_hours": 6.0, "precision_target": 0.6, "events": True}


def _types_file(tmp_path: Path) -> Path:
    """The simulated fleet's types file, the pump with `TRAINING` as its training settings."""
    data = yaml.safe_load(TYPES_FILE.read_text(encoding="utf-8"))
    for item in data["machine_types"]:
        if item["name"] == PUMP:
            item["training"] = TRAINING
    path = tmp_path / "types.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _new(engine, *known: str) -> versions.VersionInfo:  # noqa: ANN001
    (new,) = [v for v in versions.list_versions(engine, PUMP) if v.version not in known]
    return new


def test_train_uses_the_type_s_settings_over_the_fleet_wide_ones_and_a_flag_over_the_type_s(
    engine, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("SERVICECAST_MODEL_PRECISION_TARGET", "0.9")
    monkeypatch.setenv("SERVICECAST_MODEL_MAX_FALSE_ALARMS", "0.5")
    run = _models_cli(engine, monkeypatch)
    _store(engine, machines=4, hours=480, failures=FAILURES, readings=_wearing)
    machine_types.apply_file(engine=engine, path=_types_file(tmp_path))

    result = run(["train"])

    assert result.exit_code == 0, result.output
    trained = _new(engine)
    assert trained.params["horizon_hours"] == 48.0
    # The type's lead and precision target; its file leaves the false-alarm bound to the setting.
    metrics = trained.metrics
    assert (metrics["min_lead_hours"], metrics["precision_target"], metrics["max_false_alarms"]) == (
        6.0,
        0.6,
        0.5,
    )
    assert versions.load(engine, trained.version).features_.extras_  # the type's `events: true`

    result = run(["train", "--no-event-features"])

    assert result.exit_code == 0, result.output
    again = _new(engine, trained.version)
    assert again.params["horizon_hours"] == 48.0
    assert versions.load(engine, again.version).features_.extras_ == []
