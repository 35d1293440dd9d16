"""`servicecast train` says how many maintenance labels it read, and that they change no row's label."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from fleet import labels
from fleet.tables import Machine
from models import versions
from tests.models.fleet_support import PUMP
from tests.models.test_degenerate import FAILURES, T0, _models_cli, _store, _wearing


def _labelled_rows(engine) -> dict:
    (live,) = [v for v in versions.list_versions(engine, PUMP) if v.active]
    return live.metrics["labelled_rows"]


def test_train_counts_the_maintenance_labels_it_read_which_change_no_rows_label(engine, monkeypatch) -> None:
    run = _models_cli(engine, monkeypatch)
    ids = _store(engine, machines=4, hours=480, failures=FAILURES, readings=_wearing)
    first = run(["train", "--force"])
    assert first.exit_code == 0, first.output
    assert "maintenance label" not in first.output
    before = _labelled_rows(engine)
    with engine.begin() as conn:
        customer = conn.scalar(select(Machine.customer_id).where(Machine.id == ids[0]))
        scheduled = {
            "kind": "maintenance",
            "source": "import",
            "component": "bearing",
            "activity": "scheduled",
        }
        rows = [
            scheduled
            | {"customer_id": customer, "machine_id": m, "ts": T0 + timedelta(hours=h), "ref": f"m:{h}"}
            for m, h in [(ids[0], 100), (ids[1], 200), (ids[2], 300)]
        ]
        assert labels.write(conn, rows) == 3

    second = run(["train", "--force"])

    assert second.exit_code == 0, second.output
    line = f"{PUMP}: read 3 maintenance labels (visits that found no wear): they change no row's label"
    assert line in second.output
    assert _labelled_rows(engine) == before
