"""A chart over an archive file that cannot be read: 503 naming the month and file, other reads unharmed."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from fleet import archive, telemetry
from fleet.settings import get_settings
from fleet.tables import ArchiveFile
from tests.api.support import World, build_world
from tests.console.client import ConsoleClient, heading, sign_in

START = datetime(2026, 9, 30, 22, 0, tzinfo=UTC)  # four hours across the end of September


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> World:
    world = build_world(database_url, archive_url=str(tmp_path / "archive"))
    rows = [
        {
            "customer_id": world.customers[tenant],
            "machine_id": world.machines[tenant][0],
            "seq": i + 1,
            "ts": START + timedelta(minutes=i),
            "readings": {"temperature_c": 60.0 + i % 5},
            "received_at": START,
        }
        for tenant in ("acme", "globex")
        for i in range(240)
    ]
    with world.engine.begin() as conn:
        telemetry.insert_telemetry(conn, rows)
    archive.run(world.engine, url=world.settings.archive_url, before=START + timedelta(days=30))
    return world


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.settings), raise_server_exceptions=False) as client:
        yield client


def _october_of_acme(world: World) -> tuple[str, Path]:
    with world.engine.connect() as conn:
        relative = conn.scalar(
            select(ArchiveFile.path).where(
                ArchiveFile.customer_id == world.customers["acme"], ArchiveFile.month == "2026-10"
            )
        )
    return relative, Path(world.settings.archive_url) / relative


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _scramble(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * (path.stat().st_size // 256 + 1))


DAMAGES: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "corrupt": _scramble,
    "deleted": Path.unlink,
}


def _chart(client: TestClient, world: World, tenant: str, start: datetime, hours: int):
    window = {"start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()}
    path = f"/api/v1/machines/{world.machines[tenant][0]}/telemetry"
    return client.get(path, params=window, headers=world.headers("tech"))


@pytest.fixture(params=DAMAGES)
def damaged(request: pytest.FixtureRequest, world: World) -> str:
    """Acme's October file, damaged one way: its path within the archive."""
    relative, path = _october_of_acme(world)
    DAMAGES[request.param](path)
    return relative


@pytest.mark.expect_logged_errors
def test_an_unreadable_archive_file_is_a_503_naming_it_and_spares_other_reads(
    client: TestClient, world: World, damaged: str
) -> None:
    october = START + timedelta(hours=2)
    response = _chart(client, world, "acme", october, 1)
    assert response.status_code == 503, response.text[:300]
    assert response.json()["error"] == "archive_unreadable"
    assert "month 2026-10" in response.json()["detail"] and damaged in response.json()["detail"]
    # September of the same machine, and October of another customer's machine, read as before.
    september, elsewhere = (
        _chart(client, world, "acme", START, 1),
        _chart(client, world, "globex", october, 1),
    )
    assert (september.status_code, september.json()["rows"]) == (200, 60)
    assert (elsewhere.status_code, elsewhere.json()["rows"]) == (200, 60)


@pytest.mark.expect_logged_errors
def test_a_console_chart_over_an_unreadable_archive_file_is_a_503_page(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICECAST_ARCHIVE_URL", world.settings.archive_url)  # what the console reads
    get_settings.cache_clear()
    relative, path = _october_of_acme(world)
    _truncate(path)
    later = {"customer_id": world.customers["acme"], "machine_id": world.machines["acme"][0], "seq": 999}
    with world.engine.begin() as conn:  # a hot row a day later: the page's week reaches into October
        telemetry.insert_telemetry(
            conn, [{**later, "ts": START + timedelta(days=1), "readings": {}, "received_at": START}]
        )
    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "tech")
        response = client.get(f"/machines/{world.machines['acme'][0]}")
    assert response.status_code == 503, response.text[:300]
    assert heading(response.text) == "Data unavailable" and relative in response.text


@pytest.mark.expect_logged_errors
def test_an_export_over_an_unreadable_archive_file_is_a_503_before_any_byte(
    client: TestClient, world: World, damaged: str
) -> None:
    """Streamed, it answered 200 and broke off mid-ZIP: a download that looks finished, with no reason."""
    response = client.get("/api/v1/export", headers=world.headers("cust-acme"))
    assert response.status_code == 503, response.text[:300]
    assert response.json()["error"] == "archive_unreadable" and damaged in response.json()["detail"]
    other = client.get("/api/v1/export", headers=world.headers("cust-globex"))
    assert other.status_code == 200 and zipfile.ZipFile(io.BytesIO(other.content)).testzip() is None
