"""The erasure ledger's copy (SERVICECAST_ERASURE_LEDGER_COPY), kept out of the backups: a database and an
archive folder put back together from before an erasure are told by it; an erasure it cannot record fails
before its commit; unset, nothing new is written anywhere."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, func, make_url, select
from typer.testing import CliRunner

from fleet import archive, archive_store, erasure, erasure_ledger, errors, retention
from fleet.settings import Settings, get_settings
from fleet.tables import Base, Customer, WorkflowEvent
from servicecast.cli import app
from tests.lifecycle import support
from tests.lifecycle.test_erasure_storage import _undeletable

UNDONE = (
    r"acme \(erased 2026-09-28T22:00:00\+00:00 as erased-[0-9a-f]{12}\).*"
    r"`servicecast customers erase --reapply`"
)
REFUSED = "servicecast: `servicecast train` did not start: this database holds customers"


def _use(monkeypatch: pytest.MonkeyPatch, engine: Engine, url: str, copy: Path | None) -> None:
    """The CLI's settings: this database, the archive at `url`, the ledger's copy at `copy` (or unset)."""
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("SERVICECAST_ARCHIVE_URL", url)
    if copy is not None:
        monkeypatch.setenv("SERVICECAST_ERASURE_LEDGER_COPY", str(copy))
    get_settings.cache_clear()


def _fleet(engine: Engine) -> None:
    """acme and beta, a pump each with 300 rows."""
    acme = support.register(engine, "acme", ["p1"])["p1"]
    beta = support.register(engine, "beta", ["q1"])["q1"]
    support.write(engine, support.rows(acme, seqs=range(300), step_s=600.0))
    support.write(engine, support.rows(beta, seqs=range(300), step_s=600.0, seed=1))


def _ledger(root: Path, store: str) -> set[str]:
    """The names of the entries in the ledger of `store` under `root` (the archive or the copy)."""
    return {p.name for p in (root / store / erasure_ledger.FOLDER).glob("*.json")}


def _counts(conn: Connection, *, but: tuple[str, ...] = ()) -> dict[str, int]:
    tables = (t for t in Base.metadata.sorted_tables if t.name not in but)
    return {t.name: conn.scalar(select(func.count()).select_from(t)) for t in tables}


def _tenants(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.scalars(select(Customer.tenant)))


@pytest.mark.parametrize("archived", [True, False], ids=["archived", "before-first-archive-use"])
def test_a_database_and_archive_put_back_together_from_before_an_erasure_are_told_by_the_copy(
    engine, postgres, tmp_path, monkeypatch, archived
):
    copy, url, backup = tmp_path / "ledger-copy", tmp_path / "archive", tmp_path / "archive-backup"
    _use(monkeypatch, engine, str(url), copy)
    _fleet(engine)
    if archived:
        archive.run(engine, url=str(url), before=support.START + timedelta(days=1))
        shutil.copytree(url, backup)
    # The backup of both, taken before the erasure, is what the database in use and its archive are put
    # back from; the copy is kept apart.
    with support.restored_copy(engine, postgres, tmp_path, physical=archived) as restored:
        erasure.erase(
            engine, tenant="acme", confirm="acme", by="cli:test", archive_url=str(url), now=support.START
        )
        shutil.rmtree(url)
        if archived:
            shutil.copytree(backup, url)
        _use(monkeypatch, restored, str(url), copy)
        with restored.connect() as conn:
            before = _counts(conn)
        files = support.archived_files(str(url))

        ran = CliRunner().invoke(app, ["train"])  # the old code: it trained on acme's rows
        refused = [line for line in ran.output.splitlines() if line.startswith(REFUSED)]
        assert ran.exit_code == 1 and len(refused) == 1 and re.search(UNDONE, refused[0]), ran.output
        with restored.connect() as conn:
            assert _counts(conn) == before
        assert support.archived_files(str(url)) == files
        later = support.START + timedelta(days=5)
        with pytest.raises(errors.ErasureUndone, match=UNDONE):  # the old code: acme's rows archived again
            archive.run(restored, url=str(url), before=later)
        with pytest.raises(errors.ErasureUndone, match=UNDONE):
            retention.run(restored, settings=get_settings(), now=later)
        assert support.archived_files(str(url)) == files

        again = CliRunner().invoke(app, ["customers", "erase", "--reapply"])
        assert again.exit_code == 0 and '"customers": 1' in again.output, again.output
        assert _tenants(restored) == ["beta"]
        store = archive_store.folder(restored)
        # The first erasure's entry (from the copy) and the second's, in both.
        assert len(_ledger(copy, store)) == 2 and _ledger(url, store) == _ledger(copy, store)
        assert CliRunner().invoke(app, ["rollups", "refresh"]).exit_code == 0  # it starts now


def test_an_erasure_whose_ledger_copy_cannot_be_written_fails_before_its_commit(
    engine, tmp_path, monkeypatch
):
    copy, url = tmp_path / "ledger-copy", tmp_path / "archive"
    _fleet(engine)
    archive.run(engine, url=str(url), before=support.START + timedelta(days=1))
    copy.mkdir()
    _use(monkeypatch, engine, str(url), copy)
    with engine.connect() as conn:
        before = _counts(conn, but=("workflow_events",))
    files = support.archived_files(str(url))

    with _undeletable(copy):  # nothing can be made in it: a read-only or full file system, say
        ran = CliRunner().invoke(app, ["customers", "erase", "acme", "--confirm", "acme"])
    # The old code: acme erased, its entry in the archive's ledger only.
    lines = ran.output.strip().splitlines()
    assert ran.exit_code == 1 and len(lines) == 1, ran.output
    assert lines[0].startswith("servicecast: cannot erase 'acme': the erasure ledger's copy (")
    assert (
        "SERVICECAST_ERASURE_LEDGER_COPY) cannot be written" in lines[0] and "nothing was erased" in lines[0]
    )
    with engine.connect() as conn:
        assert _counts(conn, but=("workflow_events",)) == before
        # The erasure began and failed, nothing erased (tests/lifecycle/test_erasure_failed.py).
        actions = set(conn.scalars(select(WorkflowEvent.action).where(WorkflowEvent.subject == "customer")))
        assert {erasure.STARTED, erasure.FAILED} <= actions and "erased" not in actions
    assert support.archived_files(str(url)) == files
    assert not list(url.rglob(f"{erasure_ledger.FOLDER}/*")) and not list(copy.iterdir())

    done = CliRunner().invoke(app, ["customers", "erase", "acme", "--confirm", "acme"])
    assert done.exit_code == 0 and _tenants(engine) == ["beta"], done.output
    store = archive_store.folder(engine)
    assert len(_ledger(copy, store)) == 1 and _ledger(url, store) == _ledger(copy, store)


def test_a_copy_set_after_erasures_gets_their_entries_at_the_next_check(
    engine, tmp_path, monkeypatch, caplog
):
    copy, url = tmp_path / "ledger-copy", tmp_path / "archive"
    _fleet(engine)
    for tenant in ("acme", "beta"):
        erasure.erase(
            engine, tenant=tenant, confirm=tenant, by="cli:test", archive_url=str(url), now=support.START
        )
    store = archive_store.folder(engine)
    _use(monkeypatch, engine, str(url), copy)

    with caplog.at_level("WARNING", logger="fleet.erasure_ledger"):
        retention.run(engine, settings=get_settings(), now=support.START + timedelta(days=5))
    # The old code: no copy.
    assert len(_ledger(copy, store)) == 2 and _ledger(copy, store) == _ledger(url, store)
    assert "lacked the entries of erasures" in caplog.text and str(copy) in caplog.text


def test_unset_the_erasure_writes_nowhere_but_the_archive(engine, database_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative settings resolve here
    url = tmp_path / "archive"
    _fleet(engine)
    archive.run(engine, url=str(url), before=support.START + timedelta(days=1))
    before = {p for p in tmp_path.rglob("*") if not p.is_relative_to(url)}
    _use(monkeypatch, engine, str(url), None)

    ran = CliRunner().invoke(app, ["customers", "erase", "acme", "--confirm", "acme"])
    assert ran.exit_code == 0, ran.output
    assert CliRunner().invoke(app, ["retention", "run"]).exit_code == 0
    # Regression guard (it held before the copy existed): no file outside the archive but the database's own.
    database = make_url(database_url).database if engine.dialect.name == "sqlite" else None
    after = {p for p in tmp_path.rglob("*") if not p.is_relative_to(url)}
    assert all(database and p.name.startswith(Path(database).name) for p in after - before), after - before
    assert len(list(url.rglob(f"{erasure_ledger.FOLDER}/*.json"))) == 1


@pytest.mark.parametrize(
    ("copy", "why"),
    [
        ("{archive}", "is the archive or a folder in it"),
        ("{archive}/ledger", "is the archive or a folder in it"),
        ("file://{archive}/x/../ledger", "is the archive or a folder in it"),
        ("memory://ledger", "keeps files in each process's memory only"),
    ],
)
def test_a_copy_in_the_archive_or_in_memory_is_refused_at_start(tmp_path, copy, why):
    archive_url = str(tmp_path / "archive")
    with pytest.raises(ValidationError, match=why):
        Settings(archive_url=archive_url, erasure_ledger_copy=copy.format(archive=archive_url))
    beside = Settings(archive_url=archive_url, erasure_ledger_copy="ledger", home=tmp_path)
    assert beside.erasure_ledger_copy == str(tmp_path / "ledger")


def test_an_erasure_whose_archive_ledger_fails_after_the_copy_is_an_unfinished_one_not_a_restore(
    engine, tmp_path, monkeypatch
):
    copy, url = tmp_path / "ledger-copy", tmp_path / "archive"
    _fleet(engine)  # never archived: acme has no archive files
    _use(monkeypatch, engine, str(url), copy)
    assert CliRunner().invoke(app, ["customers", "erase", "beta", "--confirm", "beta"]).exit_code == 0
    ledger = url / archive_store.folder(engine) / erasure_ledger.FOLDER

    with _undeletable(ledger):  # the copy's entry written, the archive's refused: its storage failing, say
        ran = CliRunner().invoke(app, ["customers", "erase", "acme", "--confirm", "acme"])
    assert ran.exit_code == 1 and "cannot erase 'acme'" in ran.output, ran.output
    assert _tenants(engine) == ["acme"]

    # The old code: every process that reads customer data refused to start, as if the database were restored.
    started = CliRunner().invoke(app, ["rollups", "refresh"])
    assert started.exit_code == 0, started.output
    done = CliRunner().invoke(app, ["customers", "erase", "acme", "--confirm", "acme"])
    assert done.exit_code == 0 and _tenants(engine) == [], done.output
