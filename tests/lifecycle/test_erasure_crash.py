"""An erasure killed while it removes the archive files: not recorded as done, and a rerun finishes it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from typer.testing import CliRunner

from fleet import archive, archive_store
from fleet.settings import get_settings
from fleet.tables import Customer, ErasureReceipt
from servicecast.cli import app
from tests.lifecycle import support


def _receipts_and_customers(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        receipts = conn.scalar(select(func.count()).select_from(ErasureReceipt))
        return receipts, conn.scalar(
            select(func.count()).select_from(Customer).where(Customer.tenant == "acme")
        )


def test_an_erasure_killed_in_its_file_step_leaves_no_file_once_rerun(
    engine, database_url, tmp_path, monkeypatch
):
    ids = support.register(engine, "acme", ["p1", "p2"])
    for n, pair in enumerate(ids.values()):
        support.write(engine, support.rows(pair, seqs=range(600), step_s=600.0, seed=n))
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=3))
    where = archive.location(url)
    tenant_dir = where.path(f"{archive_store.folder(engine)}/tenant=acme")
    assert where.fs.find(tenant_dir)  # the customer's Parquet files

    support.killed_erasure(database_url, url, "acme")
    # Its personal data is still on disk, so the erasure must not be recorded as done.
    assert where.fs.find(tenant_dir)
    assert _receipts_and_customers(engine) == (0, 1)

    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    monkeypatch.setenv("SERVICECAST_ARCHIVE_URL", url)
    get_settings.cache_clear()
    rerun = CliRunner().invoke(app, ["customers", "erase", "acme", "--confirm", "acme"])
    assert rerun.exit_code == 0, rerun.output
    assert not where.fs.exists(tenant_dir)
    assert _receipts_and_customers(engine) == (1, 0)
