"""The training row budget holds whatever a fleet's history looks like: archived months, one huge machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Engine

from fleet import archive, registry, telemetry
from models.training import read_type_panel, sample_machines
from tests.models.fleet_support import PUMP

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def _pumps(engine: Engine, hours: list[int]) -> list[int]:
    """One pooled pump per entry, with that many hourly rows ending at the same time."""
    registry.add_customer(engine=engine, tenant="acme", product_improvement=True)
    ids = []
    for m, n in enumerate(hours):
        machine = registry.add_machine(engine=engine, tenant="acme", code=f"p{m}", machine_type=PUMP)
        ids.append(machine.id)
        end = T0 + timedelta(hours=max(hours))
        rows = [
            {
                "customer_id": machine.customer_id,
                "machine_id": machine.id,
                "seq": h,
                "ts": end - timedelta(hours=n - h),
                "readings": {"temperature_c": 60.0 + h % 24, "vibration_rms_mm_s": 2.5},
                "received_at": datetime.now(UTC),
            }
            for h in range(n)
        ]
        with engine.begin() as conn:
            telemetry.insert_telemetry(conn, rows)
    return ids


def test_archived_months_count_against_the_training_row_budget(engine, tmp_path, monkeypatch) -> None:
    # Twelve weeks of four pumps, the first eight archived: the hot table holds a third of the rows that
    # training reads back (it reads the archive too), so a budget judged by hot rows alone let the panel
    # grow to three times the budget.
    monkeypatch.setenv("SERVICECAST_ARCHIVE_URL", str(tmp_path / "archive"))
    ids = _pumps(engine, [24 * 84] * 4)
    moved = archive.run(engine, url=str(tmp_path / "archive"), before=T0 + timedelta(days=56))
    assert moved.rows == 4 * 24 * 56
    budget = 2 * 24 * 84 + 1

    sample = sample_machines(engine, ids, max_rows=budget)
    panel = read_type_panel(engine, sample, machine_type=PUMP)

    assert len(sample) == 2 and len(panel) <= budget


def test_a_machine_above_the_budget_on_its_own_is_left_out_not_read_whole(sqlite_engine) -> None:
    # One pump sent every hour for a year of the others' two weeks; the seeded order puts it first. It
    # alone was taken (eleven times the budget) and the three that fit left out.
    giant = int(np.random.default_rng(0).permutation(4)[0])
    hours = [24 * 14] * 4
    hours[giant] = 24 * 365
    ids = _pumps(sqlite_engine, hours)
    budget = 3 * 24 * 14 + 1

    sample = sample_machines(sqlite_engine, ids, max_rows=budget)

    assert sample == [m for k, m in enumerate(ids) if k != giant]
