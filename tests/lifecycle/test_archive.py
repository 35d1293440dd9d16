"""The Parquet archive: exact round trip, reads spanning hot and archive, duplicates after the move."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy import func, select

from fleet import archive, archive_format, history, panels, rollups
from fleet.tables import ArchivedRange, ArchiveFile, Telemetry
from tests.lifecycle import support


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(history.ROW_COLUMNS))
    for c in ("ts", "received_at"):
        frame[c] = pd.to_datetime(frame[c], utc=True)
    frame["fw"] = [f if isinstance(f, str) else None for f in frame["fw"]]
    return frame.sort_values(["machine_id", "ts", "seq"]).reset_index(drop=True)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    assert list(a["seq"]) == list(b["seq"])
    for column in history.ROW_COLUMNS:
        assert a[column].tolist() == b[column].tolist(), column


def test_encode_decode_is_exact_for_every_value_and_timestamp():
    rows = support.rows((1, 7), seqs=range(500))
    rows[3]["readings"]["odd"] = -0.0  # kept as float64: a decimal would lose the sign
    rows[4]["readings"]["big"] = 1.7976931348623157e308
    rows[5]["readings"]["count"] = 12
    frame = _frame(rows)
    _same(archive_format.decode(archive_format.encode(frame)), frame)


def test_reads_spanning_hot_and_archive_equal_the_raw_read(engine, tmp_path):
    ids = support.register(engine, "acme", ["p1", "p2"])
    machines = [ids["p1"][1], ids["p2"][1]]
    support.write(
        engine, support.rows(ids["p1"], seqs=range(3000)) + support.rows(ids["p2"], seqs=range(2000))
    )
    url = str(tmp_path / "archive")
    with engine.connect() as conn:
        before_move = history.read_hot(conn, machine_ids=machines)
    cutoff = support.START + timedelta(days=1)  # mid-stream: some rows move, later ones stay hot
    report = archive.run(engine, url=url, before=cutoff, max_rows=1500)
    assert report.rows == int((before_move["ts"] < cutoff).sum()) and report.files >= 2
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Telemetry).where(Telemetry.ts < cutoff)) == 0
        everything = history.read_rows(conn, machine_ids=machines, archive_url=url)
        start, end = cutoff - timedelta(hours=5), cutoff + timedelta(hours=3)
        window = history.read_rows(conn, machine_ids=[machines[0]], start=start, end=end, archive_url=url)
    _same(everything, before_move)
    expected = before_move[
        (before_move["machine_id"] == machines[0]) & (before_move["ts"] >= start) & (before_move["ts"] < end)
    ]
    assert len(expected) > 0
    _same(window, expected)
    # The files are plain Parquet: pandas reads them without servicecast.
    paths = support.archived_files(url)
    assert sum(pq.read_table(p).num_rows for p in paths) == report.rows
    assert all("/tenant=acme/month=2026-" in p for p in paths)


def test_resent_messages_whose_rows_are_archived_store_nothing(engine, tmp_path):
    ids = support.register(engine, "acme", ["p1"])
    rows = support.rows(ids["p1"], seqs=range(0, 2000))
    del rows[500]  # a message lost on the way: its seq is not archived and may still arrive
    support.write(engine, rows)
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=30))
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Telemetry)) == 0
        assert conn.scalar(select(func.count()).select_from(ArchivedRange)) == 2
    assert support.write(engine, rows[:50] + rows[-50:]) == 0
    late = support.rows(ids["p1"], seqs=range(500, 501))
    assert support.write(engine, late) == 1
    assert support.write(engine, late) == 0
    rollups.refresh(engine, archive_url=url)
    archive.run(engine, url=url, before=support.START + timedelta(days=30))
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ArchiveFile)) == 2
        stored = history.read_rows(conn, machine_ids=[ids["p1"][1]], archive_url=url)
    assert list(stored["seq"]) == list(range(2000))


def test_training_and_scoring_panels_include_archived_rows(engine, tmp_path):
    ids = support.register(engine, "acme", ["p1", "p2"])
    machines = [ids["p1"][1], ids["p2"][1]]
    support.write(
        engine, support.rows(ids["p1"], seqs=range(1000)) + support.rows(ids["p2"], seqs=range(900), seed=2)
    )
    sensors = ["temperature_c", "vibration_mm_s"]
    since = support.START + timedelta(hours=3)
    url = str(tmp_path / "archive")

    def panel():
        with engine.connect() as conn:
            found = panels.read_panel(
                conn, machine_ids=machines, since=since, sensors=sensors, archive_url=url
            )
        return found.sort_values(["machine", "ts"]).reset_index(drop=True)

    before = panel()
    archive.run(engine, url=url, before=support.START + timedelta(hours=10))
    after = panel()
    # SQLite's julianday arithmetic may round to the neighbouring millisecond; the archive rounds exactly.
    assert ((after["ts"] - before["ts"]).abs() <= pd.Timedelta(milliseconds=1)).all()
    pd.testing.assert_frame_equal(after.drop(columns="ts"), before.drop(columns="ts"))
