"""Export: a customer's ZIP round-trips its rows (hot and archived); another tenant's key gets 404."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import pandas as pd

from fleet import archive, export, history
from tests.api.support import build_world
from tests.lifecycle import support


def _fill(world) -> None:
    for tenant in ("acme", "globex"):
        for n, machine_id in enumerate(world.machines[tenant]):
            pair = (world.customers[tenant], machine_id)
            support.write(world.engine, support.rows(pair, seqs=range(0, 1500), step_s=1800.0, seed=n))
    archive.run(world.engine, url=world.settings.archive_url, before=support.START + timedelta(days=10))


def _store_checksum(world, tenant: str) -> tuple[int, dict]:
    with world.engine.connect() as conn:
        rows = history.read_rows(
            conn, machine_ids=world.machines[tenant], archive_url=world.settings.archive_url
        )
    return len(rows), export.checksum(export._telemetry_flat(rows))


def test_export_round_trips_and_holds_no_other_tenants_rows(database_url, tmp_path):
    world = build_world(database_url, archive_url=str(tmp_path / "archive"))
    _fill(world)
    with world.client() as client:
        answer = client.get("/api/v1/export", headers=world.headers("cust-acme"))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/zip"
        zipped = zipfile.ZipFile(io.BytesIO(answer.content))
        assert (
            client.get("/api/v1/export?tenant=globex", headers=world.headers("cust-acme")).status_code == 404
        )
        assert (
            client.get("/api/v1/export?tenant=nobody", headers=world.headers("cust-acme")).status_code == 404
        )
        assert client.get("/api/v1/export", headers=world.headers("tech")).status_code == 403
        unnamed = client.get("/api/v1/export", headers=world.headers("admin"))
        assert unnamed.status_code == 404 and "?tenant=" in unnamed.text
        other = client.get("/api/v1/export?tenant=globex", headers=world.headers("admin"))
        assert other.status_code == 200

    manifest = json.loads(zipped.read("manifest.json"))
    parts = [f for f in zipped.namelist() if f.startswith("telemetry/") and f.endswith(".parquet")]
    telemetry = pd.concat([pd.read_parquet(io.BytesIO(zipped.read(p))) for p in parts], ignore_index=True)
    rows, checksum = _store_checksum(world, "acme")
    assert len(telemetry) == manifest["telemetry"]["rows"] == rows
    assert export.checksum(telemetry) == checksum
    for sensor, (total, count) in checksum.items():
        assert manifest["telemetry"]["checksum"][sensor] == [total, count]
    csv_rows = sum(len(pd.read_csv(io.BytesIO(zipped.read(p.replace(".parquet", ".csv"))))) for p in parts)
    assert csv_rows == rows
    assert set(telemetry["machine_id"]) == set(world.machines["acme"])
    assert set(telemetry["customer_id"]) == {world.customers["acme"]}
    alerts = pd.read_parquet(io.BytesIO(zipped.read("alerts.parquet")))
    assert len(alerts) == len(world.alerts["acme"]) and set(alerts["customer_id"]) == {
        world.customers["acme"]
    }
    for name in zipped.namelist():
        assert b"globex" not in zipped.read(name), name


def test_each_pieces_csv_holds_the_values_of_its_parquet(database_url, tmp_path):
    world = build_world(database_url, archive_url=str(tmp_path / "archive"))
    _fill(world)
    with world.client() as client:
        answer = client.get("/api/v1/export", headers=world.headers("cust-acme"))
    zipped = zipfile.ZipFile(io.BytesIO(answer.content))
    parts = [f.removesuffix(".parquet") for f in zipped.namelist() if f.endswith(".parquet")]
    assert any(p.startswith("telemetry/") for p in parts)
    for part in parts:
        parquet = pd.read_parquet(io.BytesIO(zipped.read(part + ".parquet")))
        if not len(parquet.columns):
            assert zipped.read(part + ".csv").strip() == b"", part
            continue
        text = [c for c in parquet.columns if pd.api.types.is_string_dtype(parquet[c])]
        csv = pd.read_csv(io.BytesIO(zipped.read(part + ".csv")), dtype=dict.fromkeys(text, str))
        assert list(csv.columns) == list(parquet.columns), part
        for column in parquet.columns:
            if isinstance(parquet[column].dtype, pd.DatetimeTZDtype):
                csv[column] = pd.to_datetime(csv[column], format="ISO8601", utc=True)
        pd.testing.assert_frame_equal(
            _nulls_as_none(csv), _nulls_as_none(parquet), check_dtype=False, obj=part
        )


def _nulls_as_none(frame: pd.DataFrame) -> pd.DataFrame:
    """Values as objects, every kind of null as None (a CSV cell holds no null's kind)."""
    return frame.astype(object).where(frame.notna(), None)
