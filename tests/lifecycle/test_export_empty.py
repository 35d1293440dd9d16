"""An export of a customer with machines but nothing else: every table still says what its columns are."""

from __future__ import annotations

import io
import json
import zipfile

import pyarrow.parquet as pq

from fleet import export
from fleet.tables import Alert
from tests.lifecycle import support


def test_an_empty_table_exports_its_header(sqlite_engine, tmp_path):
    support.register(sqlite_engine, "acme", ["p1"])
    data = b"".join(export.stream(sqlite_engine, tenant="acme", archive_url=str(tmp_path / "archive")))
    zipped = zipfile.ZipFile(io.BytesIO(data))
    columns = [c.name for c in Alert.__table__.columns]
    assert zipped.read("alerts.csv").decode().splitlines() == [",".join(columns)]
    assert pq.read_table(io.BytesIO(zipped.read("alerts.parquet"))).column_names == columns
    manifest = json.loads(zipped.read("manifest.json"))
    assert manifest["telemetry"] == {"rows": 0, "checksum": {}}
    assert not [n for n in zipped.namelist() if n.startswith("telemetry/")]
