"""An archive file with a sound footer but a damaged column chunk: the export refuses it before any byte."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from fleet import archive, telemetry
from fleet.tables import ArchiveFile
from tests.api.support import build_world

START = datetime(2026, 9, 30, 22, 0, tzinfo=UTC)


def _damage_a_column_chunk(path: Path) -> None:
    """Zeros over the middle of the first column chunk; the footer (and so `read_metadata`) stays sound."""
    chunk = pq.read_metadata(path).row_group(0).column(0)
    with open(path, "r+b") as f:
        f.seek(chunk.data_page_offset + chunk.total_compressed_size // 2)
        f.write(bytes(64))
    pq.read_metadata(path)  # still opens


@pytest.mark.expect_logged_errors
def test_an_export_over_a_damaged_column_chunk_is_a_503_before_any_byte(database_url, tmp_path):
    world = build_world(database_url, archive_url=str(tmp_path / "archive"))
    rows = [
        {
            "customer_id": world.customers["acme"],
            "machine_id": world.machines["acme"][0],
            "seq": i + 1,
            "ts": START + timedelta(minutes=i),
            "readings": {"temperature_c": 60.0 + i % 5},
            "received_at": START,
        }
        for i in range(240)
    ]
    with world.engine.begin() as conn:
        telemetry.insert_telemetry(conn, rows)
    archive.run(world.engine, url=world.settings.archive_url, before=START + timedelta(days=30))
    with world.engine.connect() as conn:
        relative = conn.scalar(
            select(ArchiveFile.path).where(ArchiveFile.month == "2026-10").order_by(ArchiveFile.id)
        )
    _damage_a_column_chunk(Path(world.settings.archive_url) / relative)

    with TestClient(create_app(world.settings), raise_server_exceptions=False) as client:
        response = client.get("/api/v1/export", headers=world.headers("cust-acme"))
    # Before: the footer check passed, the answer was 200 and the ZIP broke off at that month.
    assert response.status_code == 503, (response.status_code, len(response.content))
    assert response.json()["error"] == "archive_unreadable" and relative in response.json()["detail"]
