"""Daylight saving: a fleet working shifts by a local clock keeps its daily reference across a switch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from fleet import machine_import, telemetry
from fleet.csv_import import ColumnMap, ImportRefused
from fleet.tables import Machine
from models.cold_start import ColdStartModel
from models.fleet_features import FleetFeatures
from models.training import read_type_panel

ZONE = "Europe/Berlin"


def _shift_fleet(zone: str | None, end: str = "2026-11-10") -> pd.DataFrame:
    """Ten machines running 06:00-22:00 Berlin time, hourly readings; `zone` is what the panel says."""
    rng = np.random.default_rng(1)
    ts = pd.date_range("2026-01-01", end, freq="h", tz="UTC", inclusive="left")
    on = (ts.tz_convert(ZONE).hour >= 6) & (ts.tz_convert(ZONE).hour < 22)
    frames = []
    for m in range(10):
        frame = pd.DataFrame(
            {
                "machine": m,
                "ts": ts,
                "seq": np.arange(len(ts)),
                "temp_c": np.where(on, 70.0, 40.0) + rng.normal(0, 0.5, len(ts)),
                "vib": np.where(on, 3.0, 0.5) + rng.normal(0, 0.05, len(ts)),
                "machine_type": "press",
            }
        )
        if zone is not None:
            frame["timezone"] = zone
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("switch", ["2026-03-29", "2026-10-25"])
def test_a_daylight_saving_switch_scores_like_any_other_day(switch: str) -> None:
    panel = _shift_fleet(ZONE)
    model = ColdStartModel(limits={}).fit(panel[panel["ts"] < "2026-03-20"])
    risk, _ = model.risk_rows(panel)
    daily = pd.Series(risk, index=panel["ts"]).resample("D").max()
    day = pd.Timestamp(switch, tz="UTC")
    switch_days = daily[day : day + pd.Timedelta(days=2)]
    normal = pd.concat(
        [
            daily[day - pd.Timedelta(days=10) : day - pd.Timedelta(days=1)],
            daily[day + pd.Timedelta(days=4) : day + pd.Timedelta(days=10)],
        ]
    )
    assert switch_days.max() <= normal.max(), (switch_days.round(3).to_dict(), normal.max())
    # the scorer's path at the shift's first hour (last rows, one lookback read): no anomaly alert
    cut = panel[(panel["ts"] <= day + pd.Timedelta(hours=4)) & (panel["ts"] > day - pd.Timedelta(days=4))]
    anomaly = model.predict_frame(cut)["anomaly_score"]
    assert anomaly.max() < model.threshold_, anomaly.round(3).tolist()


def test_a_panel_in_utc_gets_the_features_of_a_panel_without_zones() -> None:
    panel = _shift_fleet(None, end="2026-04-10")
    features = FleetFeatures().fit(panel)
    expected = features.transform(panel)
    for zone in ("UTC", ""):
        assert features.transform(panel.assign(timezone=zone)).equals(expected)


def test_a_site_time_zone_from_the_machines_file_reaches_the_panel_and_the_scores(engine, tmp_path) -> None:
    machines = tmp_path / "machines.csv"
    machines.write_text(
        "tenant,machine,machine_type,site,site_timezone\n"
        + "".join(f"acme,press-{m},press,Hall 2,{ZONE}\n" for m in range(4))
        + "acme,press-9,press,,\n"
    )
    machine_import.import_machines(engine=engine, path=machines, mapping=ColumnMap())
    with engine.connect() as conn:
        ids, customer = (
            dict(conn.execute(select(Machine.code, Machine.id)).all()),
            conn.scalar(select(Machine.customer_id)),
        )
    shifts = _shift_fleet(ZONE, end="2026-04-08")
    rows = [
        {
            "customer_id": customer,
            "machine_id": ids[f"press-{m}"],
            "seq": int(r.seq),
            "ts": r.ts.to_pydatetime(),
            "readings": {"temp_c": r.temp_c, "vib": r.vib},
            "received_at": r.ts.to_pydatetime(),
        }
        for m in range(4)
        for r in shifts[shifts["machine"] == m].itertuples()
    ]
    with engine.begin() as conn:
        telemetry.insert_telemetry(conn, rows)
    panel = read_type_panel(engine, sorted(ids.values())).assign(machine_type="press")
    assert set(panel["timezone"]) == {ZONE}
    model = ColdStartModel(limits={}).fit(panel[panel["ts"] < "2026-03-20"])
    risk, _ = model.risk_rows(panel)
    switch = (panel["ts"] >= "2026-03-29") & (panel["ts"] < "2026-04-01")
    assert risk[switch.to_numpy()].max() < model.threshold_


def test_a_machines_file_with_an_unknown_time_zone_is_refused_naming_it(sqlite_engine, tmp_path) -> None:
    machines = tmp_path / "machines.csv"
    machines.write_text("tenant,machine,site,site_timezone\nacme,p-1,Hall 2,Europe/Berlln\nacme,p-2,,UTC\n")
    with pytest.raises(ImportRefused) as refused:
        machine_import.import_machines(engine=sqlite_engine, path=machines, mapping=ColumnMap())
    assert [r.reason for r in refused.value.report.rejects] == [
        "unknown time zone 'Europe/Berlln'",
        "site_timezone 'UTC' needs a site",
    ]
