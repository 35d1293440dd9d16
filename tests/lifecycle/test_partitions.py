"""PostgreSQL's weekly telemetry partitions: the conversion migration, idempotency across partitions, and the
archive and retention dropping whole partitions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from sqlalchemy import Connection, Engine, func, select, text

from benchmarks import storage
from fleet import archive, contract, history, migrate, partitions, retention, rollups, telemetry
from fleet.db import make_engine
from fleet.settings import Settings
from fleet.tables import ArchiveFile, RollupDirty, Telemetry
from ingest.pipeline import Pipeline
from tests import services
from tests.lifecycle import support

pytestmark = pytest.mark.postgres

WEEK1 = datetime(2026, 9, 28, tzinfo=UTC)  # the Monday of support.START
WEEK2, WEEK3 = WEEK1 + partitions.WEEK, WEEK1 + 2 * partitions.WEEK
# The runs below wait this long for a held table: past PostgreSQL's deadlock_timeout (1 s), after which an
# autovacuum holding the table yields to the DDL, so only the test's own transaction makes a week busy.
QUICK_S = 1.5
T = TypeVar("T")


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Engine]:
    """A migrated PostgreSQL store."""
    with services.migrated_engine(postgres_url) as engine:
        yield engine


def _rows(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT * FROM telemetry ORDER BY machine_id, seq"))]


def _indexes(engine: Engine) -> dict[str, list[str]]:
    """Index name -> its columns, of the telemetry table."""
    query = text(
        "SELECT i.relname, array_agg(a.attname::text ORDER BY k.ord) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "CROSS JOIN unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum "
        "WHERE x.indrelid = 'telemetry'::regclass GROUP BY i.relname"
    )
    with engine.connect() as conn:
        return {name: list(columns) for name, columns in conn.execute(query)}


def _foreign_keys(engine: Engine) -> dict[str, str]:
    query = text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'telemetry'::regclass AND contype = 'f'"
    )
    with engine.connect() as conn:
        return dict(conn.execute(query).all())


def _where(engine: Engine, machine_id: int, seq: int) -> str:
    """The partition holding a stored row."""
    with engine.connect() as conn:
        return conn.scalar(
            text("SELECT tableoid::regclass::text FROM telemetry WHERE machine_id = :m AND seq = :s"),
            {"m": machine_id, "s": seq},
        )


def _count(engine: Engine, *where) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Telemetry).where(*where)) or 0


def _names(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {p.name for p in partitions.listing(conn)}


def test_the_migration_converts_a_populated_table(postgres_url):
    engine = make_engine(postgres_url)
    migrate.upgrade(engine, "0018")
    ids = support.register(engine, "acme", ["p1", "p2"])
    p1, p2 = ids["p1"], ids["p2"]
    support.write(engine, support.rows(p1, seqs=range(3000), step_s=600.0))  # 3 weeks: 4 partitions
    support.write(engine, support.rows(p2, seqs=range(500), step_s=600.0, seed=1))
    rows, indexes, keys = _rows(engine), _indexes(engine), _foreign_keys(engine)
    assert indexes["pk_telemetry"] == ["customer_id", "machine_id", "seq"]

    migrate.upgrade(engine)

    assert _rows(engine) == rows
    assert _indexes(engine) == {**indexes, "pk_telemetry": ["customer_id", "machine_id", "seq", "ts"]}
    assert _foreign_keys(engine) == keys
    with engine.connect() as conn:
        placed = conn.execute(text("SELECT tableoid::regclass::text, ts FROM telemetry")).all()
    assert {name for name, _ in placed} == {
        f"telemetry_p{w:%Y%m%d}" for w in (WEEK1, WEEK2, WEEK3, WEEK3 + partitions.WEEK)
    }
    assert all(name == f"telemetry_p{partitions.week_of(ts):%Y%m%d}" for name, ts in placed)

    # New rows land in their week's partition; a week without one (years back) in the default partition.
    now = datetime.now(UTC)
    new = support.rows(p1, seqs=range(3000, 3001), start=now - timedelta(seconds=3000 * 600), step_s=600.0)
    assert support.write(engine, new) == 1
    assert _where(engine, p1[1], 3000) == f"telemetry_p{partitions.week_of(now):%Y%m%d}"
    old = support.rows(p2, seqs=range(900, 901), start=datetime(2015, 3, 4, tzinfo=UTC))
    assert support.write(engine, old) == 1
    assert _where(engine, p2[1], 900) == "telemetry_default"
    assert partitions.split_default(engine) == ["telemetry_p20150302"]
    assert _where(engine, p2[1], 900) == "telemetry_p20150302"
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(RollupDirty)) > 0  # the rollup trigger is on

    # A key stored in one partition is a duplicate in any other: same seq, three weeks later.
    moved = support.rows(p1, seqs=range(10, 11), start=support.START + timedelta(days=21))
    assert support.write(engine, moved) == 0
    assert support.write(engine, support.rows(p1, seqs=range(10, 11), step_s=600.0)) == 0  # same ts
    assert _count(engine) == len(rows) + 2

    migrate.downgrade(engine, "0018")
    assert _indexes(engine) == indexes
    assert len(_rows(engine)) == len(rows) + 2
    engine.dispose()


def test_a_key_written_by_two_transactions_at_once_is_stored_once(pg):
    ids = support.register(pg, "acme", ["p1"])
    first = support.rows(ids["p1"], seqs=range(7, 8))
    other = support.rows(ids["p1"], seqs=range(7, 8), start=support.START + timedelta(days=9))
    with pg.connect() as a:
        a.begin()
        assert telemetry.insert_telemetry(a, first) == 1  # not committed yet
        stored = []
        writer = threading.Thread(target=lambda: stored.append(support.write(pg, other)))
        writer.start()
        while writer.is_alive() and not services.waiting_on_advisory_lock(pg):
            writer.join(0.05)
        a.commit()
    writer.join()
    assert stored == [0]
    assert _count(pg) == 1 and _where(pg, ids["p1"][1], 7) == "telemetry_default"


def test_the_archive_drops_whole_weeks_and_deletes_the_rest_by_key(pg, tmp_path):
    ids = support.register(pg, "acme", ["p1", "p2"])
    machines = [ids["p1"][1], ids["p2"][1]]
    rows = support.rows(ids["p1"], seqs=range(2500), step_s=600.0)  # 17 days: weeks 1 and 2, part of 3
    support.write(pg, rows + support.rows(ids["p2"], seqs=range(1200), step_s=600.0, seed=3))
    with pg.connect() as conn:
        before_move = history.read_hot(conn, machine_ids=machines)
    url = str(tmp_path / "archive")

    report = archive.run(pg, url=url, before=WEEK3)
    assert report.partitions_dropped == 2 and report.rows == int((before_move["ts"] < WEEK3).sum())
    names = _names(pg)
    assert (
        f"telemetry_p{WEEK3:%Y%m%d}" in names
        and not {f"telemetry_p{w:%Y%m%d}" for w in (WEEK1, WEEK2)} & names
    )
    assert _count(pg, Telemetry.ts < WEEK3) == 0
    with pg.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM telemetry_default")) == 0
        assert history.read_rows(conn, machine_ids=machines, archive_url=url).shape[0] == len(before_move)
    assert support.write(pg, rows[:40] + rows[1000:1040]) == 0  # archived from dropped partitions

    cutoff = WEEK3 + timedelta(days=2, hours=5)  # inside week 3: its older rows go by key
    report = archive.run(pg, url=url, before=cutoff)
    assert report.partitions_dropped == 0 and report.rows > 0
    assert _count(pg, Telemetry.ts < cutoff) == 0 and f"telemetry_p{WEEK3:%Y%m%d}" in _names(pg)
    with pg.connect() as conn:
        everything = history.read_rows(conn, machine_ids=machines, archive_url=url)
    keys = ["machine_id", "seq"]
    assert sorted(map(tuple, everything[keys].to_numpy())) == sorted(map(tuple, before_move[keys].to_numpy()))


def test_a_late_row_in_a_week_being_moved_keeps_its_partition_and_loses_nothing(pg, tmp_path):
    ids = support.register(pg, "acme", ["p1"])
    rows = support.rows(ids["p1"], seqs=range(1500), step_s=600.0)
    late = rows.pop(100)  # arrives while its week's files are being written
    support.write(pg, rows)
    url = str(tmp_path / "archive")
    sent = []

    def deliver(relative: str) -> None:
        if not sent:
            sent.append(support.write(pg, [late]))

    report = archive.run(pg, url=url, before=WEEK2, after_write=deliver)
    assert sent == [1] and report.partitions_dropped == 0
    assert f"telemetry_p{WEEK1:%Y%m%d}" in _names(pg)  # kept: moved by key instead, late row included
    assert _count(pg, Telemetry.ts < WEEK2) == 0
    with pg.connect() as conn:
        registered = set(conn.scalars(select(ArchiveFile.path)))
        stored = history.read_rows(conn, machine_ids=[ids["p1"][1]], archive_url=url)
    where = archive.location(url)
    on_disk = {p.split(where.root.rstrip("/") + "/", 1)[1] for p in support.archived_files(url)}
    assert on_disk == registered  # the dropped attempt's files are gone
    assert list(stored["seq"]) == list(range(1500))


def test_retention_with_a_fake_clock_drops_the_weeks_past_the_hot_window(pg, tmp_path):
    ids = support.register(pg, "acme", ["p1"])
    rows = support.rows(ids["p1"], seqs=range(30 * 24 * 6), step_s=600.0)  # 30 days
    support.write(pg, rows)
    now = support.START + timedelta(days=30)  # hot window 14 days: cutoff 2026-10-14 22:00, in week 3
    settings = Settings(archive_url=str(tmp_path / "archive"), hot_days=14)

    dry = retention.run(pg, settings=settings, now=now, dry_run=True)
    assert _names(pg) == {f"telemetry_p{w:%Y%m%d}" for w in _ahead(datetime.now(UTC))}  # dry: unchanged

    retention.run(pg, settings=settings, now=now)
    names = _names(pg)
    assert not {f"telemetry_p{w:%Y%m%d}" for w in (WEEK1, WEEK2)} & names  # wholly past: dropped
    assert {f"telemetry_p{w:%Y%m%d}" for w in (WEEK3, *_ahead(now))} <= names  # partial, and ahead
    assert _count(pg, Telemetry.ts < now - timedelta(days=14)) == 0
    assert {s.data_class: s.count for s in dry.steps}["telemetry_hot"] == sum(
        r["ts"] < now - timedelta(days=14) for r in rows
    )
    with pg.connect() as conn:
        stored = history.read_rows(conn, machine_ids=[ids["p1"][1]], archive_url=settings.archive_url)
    assert list(stored["seq"]) == list(range(len(rows)))


def _ahead(now: datetime) -> list[datetime]:
    return [partitions.week_of(now) + i * partitions.WEEK for i in range(partitions.AHEAD_WEEKS + 1)]


def test_ingest_tells_a_redelivery_from_a_reused_seq_in_another_partition(pg):
    support.register(pg, "acme", ["m-000"])
    topic = contract.telemetry_topic("acme", "m-000")
    pipeline = Pipeline(engine=pg)
    first = [(topic, contract.encode_payload(1, WEEK1 + timedelta(hours=3), {"t": 1.0}), time.time())]
    assert pipeline.store(first)[0].stored == 1
    partitions.split_default(pg)  # week 1 gets its partition; week 3 has none: its rows go to the default
    later = [(topic, contract.encode_payload(1, WEEK3 + timedelta(hours=3), {"t": 2.0}), time.time())]
    outcome, _ = pipeline.store(first)  # a redelivery
    assert (outcome.stored, outcome.duplicates, outcome.quarantined) == (0, 1, 0)
    outcome, results = pipeline.store(later)  # a batch of its own: only the store can tell
    assert (outcome.stored, outcome.duplicates, outcome.quarantined) == (0, 0, 1)
    assert results[0].reason == "seq_conflict"
    assert _count(pg) == 1 and _where(pg, _machine_id(pg), 1) == f"telemetry_p{WEEK1:%Y%m%d}"


def _machine_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT id FROM machines"))


def test_two_processes_making_the_same_week_partition_at_once_both_succeed(pg):
    """The scorer's daily maintenance and an archive run may both make next week's partition."""
    week = WEEK1 + 200 * partitions.WEEK  # far past the weeks made ahead
    errors: list[BaseException] = []

    def second() -> None:
        try:
            partitions.ensure(pg, {week})
        except BaseException as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    with pg.connect() as first:
        first.begin()
        partitions.ensure_in(first, {week})  # made, not yet committed
        thread = threading.Thread(target=second)
        thread.start()
        while thread.is_alive() and not services.waiting_on_lock(
            pg
        ):  # until the second one waits for the first
            thread.join(0.05)
        first.commit()
    thread.join()
    assert errors == []
    with pg.connect() as conn:
        assert [p.lo for p in partitions.listing(conn)].count(week) == 1


def test_the_storage_benchmark_counts_the_bytes_of_every_partition(pg):
    """The partitioned parent is empty: its partitions' tables and indexes are the hot bytes."""
    ids = support.register(pg, "acme", ["p1"])
    support.write(pg, support.rows(ids["p1"], seqs=range(200)))
    with pg.connect() as conn:
        partitions_bytes = conn.scalar(
            text(
                "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
                "WHERE inhparent = 'telemetry'::regclass"
            )
        )
    assert storage.hot_bytes(pg) == partitions_bytes > 0


def _archived_while(pg: Engine, url: str, held_by: Callable[[Connection], None]) -> archive.Report:
    """An archive run of weeks 1 and 2 while another connection, after `held_by`, keeps its transaction
    open (then rolled back); that transaction must still be open when the run ends."""
    return _ran_while(lambda: archive.run(pg, url=url, before=WEEK3, lock_timeout_s=QUICK_S), pg, held_by)


def _ran_while(run: Callable[[], T], pg: Engine, held_by: Callable[[Connection], None]) -> T:
    """What `run` returned, run while another connection, after `held_by`, keeps its transaction open (then
    rolled back); that transaction must still be open when the run ends."""
    done: list[T] = []
    runner = threading.Thread(target=lambda: done.append(run()))
    with pg.connect() as holder, holder.begin() as held:
        held_by(holder)
        runner.start()
        runner.join(120)  # a bound for the old code, which waited for this transaction: not a speed check
        ended_while_held = not runner.is_alive()
        assert held.is_active
        held.rollback()
    runner.join()
    assert ended_while_held, "the run waited for the open transaction"
    return done[0]


def test_a_writer_holding_a_week_leaves_its_partition_and_the_run_moves_its_rows_by_key(pg, tmp_path):
    ids = support.register(pg, "acme", ["p1"])
    rows = support.rows(ids["p1"], seqs=range(2000), step_s=600.0)
    late = rows.pop(100)  # week 1's, written by a transaction still open as the archive runs
    support.write(pg, rows)
    partitions.split_default(pg)
    url = str(tmp_path / "archive")

    report = _archived_while(pg, url, lambda holder: telemetry.insert_telemetry(holder, [late]))
    # Week 2 is kept too: the writer holds the table against the drop's lock (`drop_unchanged`).
    assert report.partitions_busy == [f"telemetry_p{w:%Y%m%d}" for w in (WEEK1, WEEK2)]
    assert report.partitions_dropped == 0
    assert f"telemetry_p{WEEK1:%Y%m%d}" in _names(pg)
    assert _count(pg, Telemetry.ts < WEEK3) == 0 and report.rows == sum(r["ts"] < WEEK3 for r in rows)
    support.write(pg, [late])
    assert archive.run(pg, url=url, before=WEEK3).partitions_dropped == 2  # free now: both weeks go whole
    with pg.connect() as conn:
        stored = history.read_rows(conn, machine_ids=[ids["p1"][1]], archive_url=url)
    assert list(stored["seq"]) == list(range(2000))


def test_a_reader_of_the_default_partition_leaves_its_weeks_there_and_the_run_moves_them_by_key(pg, tmp_path):
    ids = support.register(pg, "acme", ["p1"])
    support.write(pg, support.rows(ids["p1"], seqs=range(2000), step_s=600.0))  # weeks 1-3, in the default
    url = str(tmp_path / "archive")

    report = _archived_while(pg, url, lambda holder: holder.execute(text("SELECT count(*) FROM telemetry")))
    assert report.partitions_busy == [f"telemetry_p{w:%Y%m%d}" for w in (WEEK1, WEEK2, WEEK3)]
    assert _count(pg, Telemetry.ts < WEEK3) == 0 and report.rows > 0
    with pg.connect() as conn:
        stored = history.read_rows(conn, machine_ids=[ids["p1"][1]], archive_url=url)
    assert list(stored["seq"]) == list(range(2000))


def test_retention_waits_for_a_held_week_as_long_as_the_setting_says_and_names_it(pg, tmp_path):
    ids = support.register(pg, "acme", ["p1"])
    rows = support.rows(ids["p1"], seqs=range(2000), step_s=600.0)  # weeks 1 and 2
    late = rows.pop(100)  # week 1's, written by a transaction still open as retention runs
    support.write(pg, rows)
    partitions.split_default(pg)
    settings = Settings(archive_url=str(tmp_path / "archive"), hot_days=14, partition_lock_timeout_s=QUICK_S)
    now = WEEK2 + timedelta(days=14)  # the cutoff: week 2's Monday, so week 1 alone is wholly past it
    rollups.refresh(pg, archive_url=settings.archive_url)  # the run meets the writer at the partition alone

    plan = _ran_while(
        lambda: retention.run(pg, settings=settings, now=now),
        pg,
        lambda holder: telemetry.insert_telemetry(holder, [late]),
    )
    [step] = [s for s in plan.steps if s.data_class == "telemetry_hot"]
    assert step.note == (
        f"telemetry_p{WEEK1:%Y%m%d} held by another transaction past 1.5 s: rows moved by key, the partition "
        "left for a later run"
    )  # the old code: "past 5s", the setting unknown
    assert f"telemetry_p{WEEK1:%Y%m%d}" in _names(pg) and _count(pg, Telemetry.ts < WEEK2) == 0


def test_a_reader_holding_a_week_at_its_drop_is_named_busy_in_retentions_line(pg, tmp_path):
    """The reader's lock lets the week be watched and its files written; the drop's lock then times out."""
    ids = support.register(pg, "acme", ["p1"])
    support.write(pg, support.rows(ids["p1"], seqs=range(2000), step_s=600.0))  # weeks 1 and 2
    partitions.split_default(pg)
    settings = Settings(archive_url=str(tmp_path / "archive"), hot_days=14, partition_lock_timeout_s=QUICK_S)
    now = WEEK2 + timedelta(days=14)  # the cutoff: week 2's Monday, so week 1 alone is wholly past it
    week1 = f"telemetry_p{WEEK1:%Y%m%d}"

    plan = _ran_while(
        lambda: retention.run(pg, settings=settings, now=now),
        pg,
        lambda holder: holder.execute(text(f"SELECT count(*) FROM {week1}")),
    )
    [step] = [s for s in plan.steps if s.data_class == "telemetry_hot"]
    assert step.note == (
        f"{week1} held by another transaction past 1.5 s: rows moved by key, the partition left for a "
        "later run"
    )  # the old code: "", the week left out silently
    assert week1 in _names(pg) and _count(pg, Telemetry.ts < WEEK2) == 0
    with pg.connect() as conn:
        stored = history.read_rows(conn, machine_ids=[ids["p1"][1]], archive_url=settings.archive_url)
    assert list(stored["seq"]) == list(range(2000))
