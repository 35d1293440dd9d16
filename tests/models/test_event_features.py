"""Event features from the store (SQLite and PostgreSQL): code counts, time since a code, since a visit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from benchmarks import azure_onboard
from benchmarks.azure_onboard import TYPES
from fleet import csv_import, history_import, machine_types
from fleet.tables import Machine
from ingest import telemetry_import
from models import event_features, scoring, versions
from models.fleet_features import FleetFeatures
from servicecast.cli import app
from tests.ingest.support import register_fleet
from tests.models.test_azure_pdm import _slice

EVENTS = "datetime,machineID,errorID\n2015-01-02 06:00:00,1,error1\n2015-01-02 20:00:00,1,error1\n"
EVENTS += "2015-01-03 05:00:00,1,error3\n"
MAINT = "datetime,machineID,comp\n2014-12-31 06:00:00,1,comp2\n2015-01-03 06:00:00,1,comp2\n"
MAP = csv_import.ColumnMap(
    tenant="acme", columns={"ts": "datetime", "machine": "machineID", "code": "errorID"}
)


def test_counts_and_times_come_from_the_imported_events_and_history(engine, tmp_path) -> None:
    register_fleet(engine, "acme", ["1"])
    machine_types.apply_file(engine=engine, path=TYPES)
    (tmp_path / "e.csv").write_text(EVENTS)
    (tmp_path / "m.csv").write_text(MAINT)
    telemetry_import.import_file(engine=engine, path=tmp_path / "e.csv", mapping=MAP.merged(kind="events"))
    history_import.import_history(
        engine=engine,
        path=tmp_path / "m.csv",
        mapping=MAP.merged(kind="maintenance", columns={"component": "comp"}),
    )
    with engine.connect() as conn:
        machine = conn.scalar(select(Machine.id))
        columns = event_features.columns_of_type(conn, "azure_machine")
        hours = pd.date_range("2015-01-02 12:00", periods=4, freq="6h", tz="UTC")  # 12, 18, 00, 06
        panel = pd.DataFrame({"machine": machine, "ts": hours, "volt": 170.0})
        out = event_features.add(conn, panel, columns)
    assert len(columns) == 5 + 5 + 4
    np.testing.assert_array_equal(out["ev:count24:error1"], [1, 1, 2, 1])  # 06:00 leaves after 24 h
    np.testing.assert_array_equal(out["ev:since:error1"], [6, 12, 4, 10])
    np.testing.assert_array_equal(out["ev:since:error3"], [720, 720, 720, 1])  # none yet: the cap
    np.testing.assert_array_equal(out["ev:replaced:comp2"], [54, 60, 66, 0])
    assert out["ev:replaced:comp1"].isna().all()  # never visited
    feats = FleetFeatures(min_history_hours=0).fit(out)
    assert feats.sensors_ == ["volt"] and feats.extras_ == columns  # passed through, not read as sensors
    table = feats.transform(out)
    np.testing.assert_array_equal(table["ev:count24:error1"], out["ev:count24:error1"])


@pytest.mark.timeout(900)  # a training run: under a minute of CPU, more wall time on a loaded box
def test_servicecast_train_with_event_features_trains_on_them_and_the_scorer_reads_them(
    sqlite_engine, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", str(sqlite_engine.url))
    azure_onboard.onboard(sqlite_engine, _slice(tmp_path))
    result = CliRunner().invoke(app, ["train", "--event-features"])
    assert result.exit_code == 0, result.output
    (version, model), *_ = versions.load_active(sqlite_engine).values()
    with sqlite_engine.connect() as conn:
        assert model.features_.extras_ == event_features.columns_of_type(conn, "azure_machine")
    report = scoring.score_once(engine=sqlite_engine)
    assert report.machines == 4 and report.statuses["ok"] == 4
