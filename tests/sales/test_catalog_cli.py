"""`servicecast catalog`: versions added from a file, refused with every problem, activated, listed, shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from api import catalog
from fleet.db import make_engine, session
from fleet.tables import CatalogVersion, WorkflowEvent
from servicecast.cli import app

SHIPPED = catalog.DEFAULT_FILE.read_text(encoding="utf-8")
OLD = catalog.default().version
NEW = OLD + 1
GOOD = SHIPPED.replace(f"version: {OLD}\n", f"version: {NEW}\n").replace(
    "default: [2400.00, 2160.00, 2640.00]", "default: [2500.50, 2250.00, 2750.00]"
)
BAD = GOOD.replace("min_risk: 0.7\n", "min_risk: 1.7\n")


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", database_url)
    return lambda *args: CliRunner().invoke(app, ["catalog", *args])


def test_a_file_is_added_activated_listed_and_shown(cli, database_url: str, tmp_path: Path) -> None:  # noqa: ANN001
    assert cli("list").output == f"version {OLD}\tEUR\t4 items\tshipped file\tin force\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    refused = cli("add", str(bad))
    line = next(n for n, text in enumerate(BAD.splitlines(), 1) if "min_risk: 1.7" in text)
    assert (
        refused.exit_code != 0
        and "nothing changed" in refused.output
        and f"{bad}:{line}: items[1].min_risk" in refused.output
    )

    good = tmp_path / "good.yaml"
    good.write_text(GOOD, encoding="utf-8")
    added = cli("add", str(good))
    assert added.exit_code == 0, added.output
    assert added.output.startswith(f"catalog version {NEW}: 4 items, EUR, stored, not in force")
    assert cli("add", str(good)).exit_code != 0  # the version number is taken
    assert cli("activate", str(NEW + 1)).exit_code != 0
    activated = cli("activate", str(NEW))
    assert activated.output == f"catalog version {NEW} in force (was {OLD})\n"
    listed = cli("list").output.splitlines()
    assert listed[0].startswith(f"version {NEW}\tEUR\t4 items\tadded ") and listed[0].endswith("in force")
    assert listed[1] == f"version {OLD}\tEUR\t4 items\tshipped file"
    assert cli("show").output == GOOD and cli("show", str(OLD)).output == SHIPPED
    assert cli("show", "99").exit_code != 0

    engine = make_engine(database_url)
    try:
        with session(engine) as sess:
            assert sess.scalars(select(CatalogVersion.version)).all() == [NEW]
            trail = sess.scalars(select(WorkflowEvent).where(WorkflowEvent.subject == "catalog")).all()
    finally:
        engine.dispose()
    assert [(e.action, e.actor.startswith("cli:")) for e in trail] == [
        ("catalog_added", True),
        ("catalog_activated", True),
    ]


def test_add_with_activate_puts_it_in_force_at_once(cli, tmp_path: Path) -> None:  # noqa: ANN001
    good = tmp_path / "good.yaml"
    good.write_text(GOOD, encoding="utf-8")
    assert cli("add", str(good), "--activate").output.startswith(
        f"catalog version {NEW}: 4 items, EUR, in force"
    )
    assert cli("list").output.splitlines()[0].endswith("in force")
