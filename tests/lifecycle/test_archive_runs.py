"""Archived keys as runs of evenly stepped seqs (migration 0028): an hourly import whose seqs are milliseconds
archives as a few runs per machine, every archived message re-sent is a duplicate, one that never came is
stored when it comes, and runs written before 0028 (or after a downgrade) mean what they meant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select, text

from fleet import archive, history, migrate
from fleet.tables import ArchivedRange, ArchiveFile, Machine
from models.training import sample_machines
from tests.fleet.test_telemetry_import import run as import_csv
from tests.ingest.support import register_fleet
from tests.lifecycle import support

START = datetime(2015, 1, 1, tzinfo=UTC)
HOURS = 45 * 24  # January and half of February: two files a machine
MISSING = 300  # the hour machine 1 never sent (in January)


def _csv(path, hours, *, step=timedelta(hours=1)) -> None:
    """Azure PdM's telemetry layout: no seq column, so each message's seq is its time in milliseconds; a
    message every `step`."""
    lines = ["datetime,machineID,volt"]
    lines += [f"{(START + h * step):%Y-%m-%d %H:%M:%S},{m},{170 + h % 7}.5" for m, h in hours]
    path.write_text("\n".join(lines) + "\n")


def _runs_per_machine_and_file(engine) -> dict[tuple[int, int], int]:
    with engine.connect() as conn:
        query = select(ArchivedRange.machine_id, ArchivedRange.file_id, func.count()).group_by(
            ArchivedRange.machine_id, ArchivedRange.file_id
        )
        return {(m, f): n for m, f, n in conn.execute(query)}


def test_an_hourly_import_with_millisecond_seqs_archives_as_a_run_per_machine_file_and_unbroken_stretch(
    database_url, engine, tmp_path
):
    register_fleet(engine, "acme", ["1", "2"])
    sent = [(m, h) for m in (1, 2) for h in range(HOURS) if (m, h) != (1, MISSING)]
    _csv(tmp_path / "telemetry.csv", sent)
    assert import_csv(database_url, tmp_path / "telemetry.csv").exit_code == 0
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=START + timedelta(days=60))

    runs = _runs_per_machine_and_file(engine)
    # Files of a month (PostgreSQL: of a week) hold one run per machine, but the file of the missing hour two.
    assert sorted(runs.values()) == [1] * (len(runs) - 1) + [2]
    again = import_csv(database_url, tmp_path / "telemetry.csv")
    assert f"imported 0 new messages, {len(sent)} stored already" in again.stdout, again.stdout

    _csv(tmp_path / "late.csv", [(1, MISSING)])
    late = import_csv(database_url, tmp_path / "late.csv")
    assert "imported 1 new message, 0 stored already" in late.stdout, late.stdout
    archive.run(engine, url=url, before=START + timedelta(days=60))  # its run lies inside January's
    for path in ("late.csv", "telemetry.csv"):
        replay = import_csv(database_url, tmp_path / path)
        assert "imported 0 new messages" in replay.stdout, replay.stdout
    with engine.connect() as conn:
        machine = conn.scalar(select(Machine.id).where(Machine.code == "1"))
        stored = history.read_rows(conn, machine_ids=[machine], archive_url=url)
    assert len(stored) == HOURS and stored["seq"].is_unique


def test_a_message_between_archived_seqs_is_stored_when_it_comes_and_archived_ones_stay_duplicates(
    engine, tmp_path
):
    ids = support.register(engine, "acme", ["p1"])
    rows = support.rows(ids["p1"], seqs=range(0, 600, 3))  # a machine that counts its seq up by three
    support.write(engine, rows)
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=30))
    with engine.connect() as conn:
        assert conn.execute(
            select(ArchivedRange.seq_lo, ArchivedRange.seq_hi, ArchivedRange.seq_step)
        ).all() == [(0, 597, 3)]
    assert support.write(engine, rows) == 0
    between = support.rows(ids["p1"], seqs=range(1, 600, 3))
    assert support.write(engine, between) == len(between)
    archive.run(engine, url=url, before=support.START + timedelta(days=30))  # a run across the first one's
    assert support.write(engine, rows + between) == 0
    assert support.write(engine, support.rows(ids["p1"], seqs=range(2, 600, 3))) == len(between)


def test_consecutive_seqs_make_the_runs_they_made_before_with_step_one():
    seqs = np.array([s for s in range(2000) if s != 500] + list(range(7, 12)))
    machines = np.array([1] * 1999 + [2] * 5)
    assert archive.seq_runs(machines, seqs) == [(1, 0, 499, 1), (1, 501, 1999, 1), (2, 7, 11, 1)]


def _stretches(machines: np.ndarray, seqs: np.ndarray) -> int:
    """Runs of consecutive seqs per machine: what archived_ranges held before 0028."""
    order = np.lexsort((seqs, machines))
    m, s = machines[order], seqs[order]
    return 1 + int(((np.diff(m) != 0) | (np.diff(s) != 1)).sum())


@st.composite
def _keys(draw) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (machine, seq) keys: per machine a step (1, 2 or an hour in ms) with some steps missing."""
    keys = set()
    for machine in range(1, draw(st.integers(1, 3)) + 1):
        step = draw(st.sampled_from([1, 2, 3_600_000]))
        base = draw(st.integers(-(10**6), 10**13))
        keys |= {(machine, base + k * step) for k in draw(st.sets(st.integers(0, 80), min_size=1))}
        keys |= {(machine, base + s) for s in draw(st.sets(st.integers(0, 80 * step), max_size=5))}
    pairs = draw(st.permutations(sorted(keys)))  # in any order
    return np.array([m for m, _ in pairs]), np.array([s for _, s in pairs])


@settings(max_examples=300, deadline=None)
@given(_keys())
def test_runs_cover_exactly_the_archived_seqs_in_no_more_rows_than_before(keys):
    machines, seqs = keys
    runs = archive.seq_runs(machines, seqs)
    covered = [(m, s) for m, lo, hi, step in runs for s in range(lo, hi + 1, step)]
    assert all(step >= 1 and (hi - lo) % step == 0 for _, lo, hi, step in runs)
    assert sorted(covered) == sorted(zip(machines.tolist(), seqs.tolist(), strict=True))
    assert len(runs) <= _stretches(machines, seqs)


def test_migration_0028_keeps_the_runs_archived_before_it(engine):
    customer, machine = support.register(engine, "acme", ["p1"])["p1"]
    migrate.downgrade(engine, "0027")
    with engine.begin() as conn:
        file_id = conn.execute(
            insert(ArchiveFile)
            .values(
                customer_id=customer,
                month="2026-09",
                path="store=0/tenant=acme/month=2026-09/part-0.parquet",
                rows=199,
                readings=199,
                bytes=1,
                ts_min=support.START,
                ts_max=support.START,
                created_at=support.START,
            )
            .returning(ArchiveFile.id)
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO archived_ranges (machine_id, seq_lo, seq_hi, file_id) VALUES (:m, :lo, :hi, :f)"
            ),
            [
                {"m": machine, "lo": 0, "hi": 99, "f": file_id},
                {"m": machine, "lo": 101, "hi": 199, "f": file_id},
            ],
        )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        runs = conn.execute(select(ArchivedRange.seq_lo, ArchivedRange.seq_hi, ArchivedRange.seq_step)).all()
    assert sorted(runs) == [(0, 99, 1), (101, 199, 1)]
    stored = support.write(engine, support.rows((customer, machine), seqs=range(0, 201)))
    assert stored == 2  # seqs 100 and 200: never archived


def test_a_downgrade_to_0027_splits_stepped_runs_into_one_per_seq(engine, tmp_path):
    ids = support.register(engine, "acme", ["p1"])
    rows = support.rows(ids["p1"], seqs=range(0, 600, 3))
    support.write(engine, rows)
    archive.run(engine, url=str(tmp_path / "archive"), before=support.START + timedelta(days=30))
    migrate.downgrade(engine, "0027")
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT seq_lo, seq_hi FROM archived_ranges ORDER BY seq_lo")).all()
    assert runs == [(s, s) for s in range(0, 600, 3)]
    assert support.write(engine, rows) == 0
    assert support.write(engine, support.rows(ids["p1"], seqs=range(1, 600, 3))) == len(rows)
    migrate.upgrade(engine)
    assert support.write(engine, rows) == 0


def test_training_counts_an_archived_run_as_its_rows(engine, tmp_path):
    ids = support.register(engine, "acme", ["p1", "p2"])
    support.write(
        engine, support.rows(ids["p1"], seqs=range(0, 600, 3)) + support.rows(ids["p2"], seqs=range(200))
    )
    archive.run(engine, url=str(tmp_path / "archive"), before=support.START + timedelta(days=30))
    machines = [ids["p1"][1], ids["p2"][1]]
    assert sample_machines(engine, machines, max_rows=400) == machines  # 200 rows each, none left out
