"""An erasure that fails or is killed ends in a state the audit trail, `customers list` and the processes'
starts tell truthfully: failed before anything was erased, an `erasure_failed` line with the reason and
nothing unfinished; stopped after something was (a file removed, a ledger entry kept, a commit lost), an
unfinished erasure that the command named, or `customers erase --reapply`, completes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from fleet import archive, archive_store, erasure, erasure_ledger
from fleet.settings import get_settings
from fleet.tables import Customer, WorkflowEvent
from servicecast.cli import app
from tests.lifecycle import support
from tests.lifecycle.test_erasure_storage import _undeletable


def _use(monkeypatch: pytest.MonkeyPatch, engine: Engine, url: Path, copy: Path | None) -> None:
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("SERVICECAST_ARCHIVE_URL", str(url))
    if copy is not None:
        monkeypatch.setenv("SERVICECAST_ERASURE_LEDGER_COPY", str(copy))
    get_settings.cache_clear()


def _fleet(engine: Engine, url: Path, *, archived: bool) -> None:
    """acme and beta, a pump each with 300 rows; `archived`: their first day in archive files."""
    for n, tenant in enumerate(("acme", "beta")):
        ids = support.register(engine, tenant, ["p1"])
        support.write(engine, support.rows(ids["p1"], seqs=range(300), step_s=600.0, seed=n))
    if archived:
        archive.run(engine, url=str(url), before=support.START + timedelta(days=1))


def _trail(engine: Engine, tenant: str) -> list[tuple[str, dict]]:
    """(action, data) of the erasure's audit lines about the customer, oldest first."""
    w = WorkflowEvent.__table__.c
    with engine.connect() as conn:
        customer_id = conn.scalar(select(Customer.id).where(Customer.tenant == tenant))
        query = select(w.action, w.data).where(
            w.subject == "customer", w.subject_id == customer_id, w.action.like("erasure%")
        )
        return [(action, data) for action, data in conn.execute(query.order_by(w.id))]


def _listed(tenant: str) -> str:
    listed = CliRunner().invoke(app, ["customers", "list"])
    assert listed.exit_code == 0, listed.output
    return {line.split("\t")[0]: line for line in listed.output.splitlines()}[tenant]


def _entries(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob(f"{erasure_ledger.FOLDER}/*")]


def _erase(tenant: str) -> str:
    ran = CliRunner().invoke(app, ["customers", "erase", tenant, "--confirm", tenant])
    assert ran.exit_code == 1 and len(ran.output.strip().splitlines()) == 1, ran.output
    return ran.output


def _failed_cleanly(engine: Engine, tenant: str, *, reason: str) -> None:
    """The trail says the erasure began and failed (why), nothing calls it unfinished, processes start."""
    trail = _trail(engine, tenant)
    assert [action for action, _ in trail] == [erasure.STARTED, erasure.FAILED], trail
    assert reason in trail[-1][1]["reason"] and "nothing was erased" in trail[-1][1]["reason"], trail
    assert "erasure" not in _listed(tenant)
    started = CliRunner().invoke(app, ["rollups", "refresh"])
    assert started.exit_code == 0, started.output


@pytest.mark.parametrize("archived", [True, False], ids=["archived", "never-archived"])
def test_an_erasure_whose_ledger_copy_cannot_be_written_is_a_failed_one(
    engine, tmp_path, monkeypatch, archived
):
    copy, url = tmp_path / "ledger-copy", tmp_path / "archive"
    _fleet(engine, url, archived=archived)
    copy.mkdir()
    _use(monkeypatch, engine, url, copy)
    files = support.archived_files(str(url))

    with _undeletable(copy):  # a read-only (or full) file system: nothing can be made in it
        said = _erase("acme")
    assert "SERVICECAST_ERASURE_LEDGER_COPY) cannot be written" in said and "nothing was erased" in said, said
    # The old code: an 'erasure_started' line alone, and `customers list` said 'erasure unfinished'.
    _failed_cleanly(engine, "acme", reason="SERVICECAST_ERASURE_LEDGER_COPY) cannot be written")
    assert support.archived_files(str(url)) == files and not _entries(url, copy)

    assert CliRunner().invoke(app, ["customers", "erase", "acme", "--confirm", "acme"]).exit_code == 0
    assert "acme" not in CliRunner().invoke(app, ["customers", "list"]).output


def _beta_erased(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, copied: bool
) -> tuple[Path, Path, Path]:
    """acme and beta (`_fleet`, not archived), beta erased by the command; the ledger copy's folder (set when
    `copied`), the archive's and its ledger's."""
    copy, url = tmp_path / "ledger-copy", tmp_path / "archive"
    _fleet(engine, url, archived=False)
    _use(monkeypatch, engine, url, copy if copied else None)
    assert CliRunner().invoke(app, ["customers", "erase", "beta", "--confirm", "beta"]).exit_code == 0
    return copy, url, url / archive_store.folder(engine) / erasure_ledger.FOLDER


@pytest.mark.parametrize("copied", [True, False], ids=["with-copy", "no-copy"])
def test_an_erasure_whose_archive_ledger_cannot_be_written_is_a_failed_one(
    engine, tmp_path, monkeypatch, copied
):
    copy, url, ledger = _beta_erased(engine, tmp_path, monkeypatch, copied=copied)
    held = set(_entries(url, copy))

    with _undeletable(ledger):  # with the copy: its entry written, then the archive's refused
        said = _erase("acme")
    assert f"{ledger}/" in said and "nothing was erased" in said, said
    # The old code: with the copy, its entry of acme kept and the trail 'erasure_started' alone; without it,
    # no line at all.
    _failed_cleanly(engine, "acme", reason=str(ledger))
    assert set(_entries(url, copy)) == held


def _unfinished_then_reapplied(engine: Engine, tenant: str) -> None:
    """`customers list` names the command that completes the erasure, the processes start (warning of it),
    and `customers erase --reapply` completes it."""
    listed = _listed(tenant)
    assert "erasure unfinished" in listed and f"`{erasure.rerun(tenant)}`" in listed, listed
    started = CliRunner().invoke(app, ["rollups", "refresh"])
    assert started.exit_code == 0, started.output
    again = CliRunner().invoke(app, ["customers", "erase", "--reapply"])
    assert again.exit_code == 0 and '"customers": 1' in again.output, again.output
    with engine.connect() as conn:
        assert list(conn.scalars(select(Customer.tenant))) == ["beta"]


@pytest.mark.parametrize("at", ["scrub", "delete"])
def test_an_erasure_killed_before_its_commit_is_completed_by_reapply(
    engine, database_url, tmp_path, monkeypatch, at
):
    url = tmp_path / "archive"
    _fleet(engine, url, archived=at == "scrub")
    support.killed_erasure(database_url, str(url), "acme", at=at)
    _use(monkeypatch, engine, url, None)
    # The old code, killed at the delete (acme without archive files): the ledger listed acme and nothing said
    # an erasure began, so every process refused to start as on a database put back from a backup; killed at
    # the scrub (before the ledger's entry): `--reapply` found nothing to erase again.
    assert [action for action, _ in _trail(engine, "acme")] == [erasure.STARTED]
    _unfinished_then_reapplied(engine, "acme")


def test_an_erasure_whose_commit_fails_is_unfinished_and_completed_by_reapply(
    engine, database_url, tmp_path, monkeypatch
):
    url = tmp_path / "archive"
    _fleet(engine, url, archived=False)
    said = support.failed_erasure(database_url, str(url), "acme")
    assert "acme" in said and "did not complete" in said, said
    _use(monkeypatch, engine, url, None)
    # The old code: the ledger's entry kept, nothing said an erasure began: no process started.
    assert _entries(url)
    assert _trail(engine, "acme")[0][0] == erasure.STARTED
    _unfinished_then_reapplied(engine, "acme")


@pytest.mark.parametrize("copied", [True, False], ids=["with-copy", "no-copy"])
def test_a_reapply_whose_ledger_cannot_be_written_back_says_so_and_that_a_rerun_finishes_it(
    engine, tmp_path, monkeypatch, copied
):
    _, url, ledger = _beta_erased(engine, tmp_path, monkeypatch, copied=copied)
    (entry,) = _entries(url)
    entry.unlink()  # the archive folder put back from a copy older than beta's erasure

    with _undeletable(ledger):
        ran = CliRunner().invoke(app, ["customers", "erase", "--reapply"])
    said = ran.output
    assert ran.exit_code == 1 and len(said.strip().splitlines()) == 1, said
    # The old code: "cannot erase 'again': [Errno 1] Operation not permitted: '…/.erased-….json.…'" alone.
    assert f"the erasure ledger {ledger} lacks the entries of erasures erased-" in said, said
    assert f"nothing was erased: once that is mended, `{erasure_ledger.REAPPLY}` again" in said, said

    again = CliRunner().invoke(app, ["customers", "erase", "--reapply"])
    assert again.exit_code == 0 and "nothing to erase again" in again.output, again.output
    assert entry.exists()
