"""An erasure killed in its file step: `customers list` says it is unfinished until a rerun completes it."""

from __future__ import annotations

from datetime import timedelta

from typer.testing import CliRunner

from fleet import archive
from fleet.settings import get_settings
from servicecast.cli import app
from tests.lifecycle import support


def test_a_killed_erasure_is_listed_as_unfinished_until_rerun(engine, database_url, tmp_path, monkeypatch):
    for tenant in ("acme", "beta"):
        ids = support.register(engine, tenant, ["p1"])
        support.write(engine, support.rows(ids["p1"], seqs=range(300), step_s=600.0))
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=3))
    support.killed_erasure(database_url, url, "acme")

    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    monkeypatch.setenv("SERVICECAST_ARCHIVE_URL", url)
    get_settings.cache_clear()
    runner = CliRunner()
    listed = runner.invoke(app, ["customers", "list"])
    assert listed.exit_code == 0, listed.output
    lines = {line.split("\t")[0]: line for line in listed.output.splitlines()}
    # Before: acme was listed like beta, nothing said some of its archive files were already gone.
    assert "erasure unfinished" in lines["acme"] and "customers erase acme --confirm acme" in lines["acme"]
    assert "erasure" not in lines["beta"]

    assert runner.invoke(app, ["customers", "erase", "acme", "--confirm", "acme"]).exit_code == 0
    listed = runner.invoke(app, ["customers", "list"])
    assert [line.split("\t")[0] for line in listed.output.splitlines()] == ["beta"]
    assert "erasure" not in listed.output
