"""A database put back from a copy taken before an erasure holds the erased customer again: the archive's
erasure ledger tells it, archive runs and retention stop before its rows reach a file again, reads name the
command, and `customers erase --reapply` erases it again; its archive files stay erased."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fleet import archive, archive_store, erasure, errors, history, retention
from fleet.settings import Settings, get_settings
from fleet.tables import Customer
from servicecast.cli import app
from tests.lifecycle import support

UNDONE = (
    r"acme \(erased 2026-09-28T22:00:00\+00:00 as erased-[0-9a-f]{12}\).*"
    r"`servicecast customers erase --reapply`"
)


def _tenants(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.scalars(select(Customer.tenant)))


def test_a_database_put_back_from_before_an_erasure_stops_until_the_erasure_is_applied_again(
    engine, postgres, tmp_path, monkeypatch
):
    acme = support.register(engine, "acme", ["p1"])["p1"]
    beta = support.register(engine, "beta", ["q1"])["q1"]
    support.write(engine, support.rows(acme, seqs=range(600), step_s=600.0))
    support.write(engine, support.rows(beta, seqs=range(600), step_s=600.0, seed=1))
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=2))  # a part of each in files
    where = archive.location(url)
    acme_files = where.path(f"{archive_store.folder(engine)}/tenant=acme")
    assert where.fs.find(acme_files)

    # The backup, taken before the erasure, is what the database in use is put back from.
    with support.restored_copy(engine, postgres, tmp_path, physical=True) as restored:
        erasure.erase(
            engine, tenant="acme", confirm="acme", by="cli:test", archive_url=url, now=support.START
        )
        assert not where.fs.exists(acme_files) and _tenants(restored) == ["acme", "beta"]

        later = support.START + timedelta(days=5)
        with pytest.raises(errors.ErasureUndone, match=UNDONE):  # the old code wrote acme's rows to files
            archive.run(restored, url=url, before=later)
        settings = Settings(archive_url=url, hot_days=1)
        with pytest.raises(errors.ErasureUndone, match=UNDONE):
            retention.run(restored, settings=settings, now=later)
        assert not where.fs.exists(acme_files)
        with restored.connect() as conn, pytest.raises(errors.ArchiveUnreadable, match="--reapply"):
            history.read_rows(conn, machine_ids=[acme[1]], archive_url=url)  # not "restore it from a backup"

        monkeypatch.setenv("SERVICECAST_DATABASE_URL", restored.url.render_as_string(hide_password=False))
        monkeypatch.setenv("SERVICECAST_ARCHIVE_URL", url)
        get_settings.cache_clear()
        again = CliRunner().invoke(app, ["customers", "erase", "--reapply"])
        assert again.exit_code == 0, again.output
        assert '"customers": 1' in again.output and _tenants(restored) == ["beta"]

        retention.run(
            restored, settings=settings, now=later
        )  # beta's rows move on; nothing of acme comes back
        assert not where.fs.exists(acme_files)
        assert len(support.read_machine(restored, beta[1], url)) == 600
        nothing = CliRunner().invoke(app, ["customers", "erase", "--reapply"])
        assert nothing.exit_code == 0 and "nothing to erase again" in nothing.output


def test_a_customer_registered_anew_under_an_erased_tenant_id_is_not_taken_for_the_erased_one(
    engine, tmp_path
):
    erased = support.register(engine, "acme", ["p1"])["p1"]
    url = str(tmp_path / "archive")
    erasure.erase(engine, tenant="acme", confirm="acme", by="cli:test", archive_url=url, now=support.START)
    anew = support.register(engine, "acme", ["p1"])["p1"]  # the company signs up again
    assert anew[0] == erased[0] or engine.dialect.name == "postgresql"  # SQLite gives the freed id again
    support.write(engine, support.rows(anew, seqs=range(300), step_s=600.0))

    report = archive.run(engine, url=url, before=support.START + timedelta(days=5))  # the old code: stopped
    assert report.rows == 300 and _tenants(engine) == ["acme"]


@pytest.mark.parametrize(
    "garbage",
    [
        b"{not json",
        b"\xff\xfe",
        b'{"customer_id": 1}',
        b"[]",
        b'{"customer_id": "1", "created_at": 0, "tenant_sha256": "x", "pseudonym": "p", "at": "t"}',
    ],
)
def test_an_unreadable_erasure_ledger_file_stops_archive_runs_with_its_path(engine, tmp_path, garbage):
    acme = support.register(engine, "acme", ["p1"])["p1"]
    support.register(engine, "beta", ["q1"])
    support.write(engine, support.rows(acme, seqs=range(300), step_s=600.0))
    url = str(tmp_path / "archive")
    erasure.erase(engine, tenant="beta", confirm="beta", by="cli:test", archive_url=url, now=support.START)
    (ledger_file,) = (tmp_path / "archive").rglob(".servicecast-erasures/*.json")
    ledger_file.write_bytes(garbage)

    later = support.START + timedelta(days=5)
    with pytest.raises(
        errors.ErasureLedgerUnreadable, match=f"{ledger_file.name}.*put it back from a backup"
    ):
        archive.run(
            engine, url=url, before=later
        )  # the old code: a bare JSONDecodeError, KeyError or TypeError
    with pytest.raises(errors.ErasureUndone, match="cannot be read"):  # retention's one-line handler takes it
        retention.run(engine, settings=Settings(archive_url=url, hot_days=1), now=later)
    assert not list((tmp_path / "archive").rglob("*.parquet"))
