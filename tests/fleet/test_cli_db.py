"""`servicecast db upgrade [REV]` / `downgrade REV` / `current`, as the README's command table names them."""

from __future__ import annotations

from typer.testing import CliRunner

from fleet import migrate
from servicecast.cli import app

runner = CliRunner()


def test_db_upgrade_takes_the_revision_as_an_argument_like_downgrade(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    first = runner.invoke(app, ["db", "upgrade", "0003"])
    assert first.exit_code == 0, first.output
    assert "database at revision 0003" in first.output
    assert "database: 0003" in runner.invoke(app, ["db", "current"]).output

    assert runner.invoke(app, ["db", "downgrade", "0002"]).exit_code == 0
    head = runner.invoke(app, ["db", "upgrade"])  # no revision: the newest
    assert head.exit_code == 0 and f"database at revision {migrate.head_revision()}" in head.output
