"""`train --force` is audited as forcing only when it activated something."""

from __future__ import annotations

from models import versions
from tests.models.fleet_support import PUMP
from tests.models.test_degenerate import FAILURES, _models_cli, _store, _wearing


def test_force_with_no_activate_neither_says_nor_records_that_it_activated(
    sqlite_engine, monkeypatch
) -> None:
    # `--no-activate` registers without promoting; with `--force` beside it the candidate stayed
    # inactive, yet train printed "not activated, active: …; activated by --force" and the version's
    # stored comparison said forced.
    run = _models_cli(sqlite_engine, monkeypatch)
    _store(sqlite_engine, machines=4, hours=480, failures=FAILURES, readings=_wearing)
    assert run(["train"]).exit_code == 0
    champion = versions.active_versions(sqlite_engine)[PUMP]

    result = run(["train", "--force", "--no-activate"])

    assert result.exit_code == 0, result.output
    assert versions.active_versions(sqlite_engine)[PUMP] == champion
    assert f"not activated, active: {champion}; no failure in the held-out window" in result.output
    assert "activated by --force" not in result.output
    (candidate,) = [v for v in versions.list_versions(sqlite_engine, PUMP) if v.version != champion]
    assert candidate.comparison["forced"] is False
