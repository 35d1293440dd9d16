"""Rollups equal pandas aggregates of the raw rows, also after late data (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
from sqlalchemy import event, func, select

from fleet import history, retention, rollups
from fleet.db import make_engine
from fleet.settings import Settings
from fleet.tables import RollupDirty
from tests.lifecycle import support


def _expected(engine, machine_ids, width_s: int) -> pd.DataFrame:
    with engine.connect() as conn:
        raw = history.read_hot(conn, machine_ids=machine_ids)
    records = [
        {"machine_id": m, "sensor": k, "ts": ts, "seq": s, "value": v}
        for m, ts, s, r in zip(raw["machine_id"], raw["ts"], raw["seq"], raw["readings"], strict=True)
        for k, v in r.items()
        if v is not None
    ]
    long = pd.DataFrame(records).sort_values(["ts", "seq"])
    long["bucket"] = long["ts"].dt.floor(f"{width_s}s")
    g = long.groupby(["machine_id", "sensor", "bucket"])
    out = g["value"].agg(n="count", total="sum", lo="min", hi="max", last="last")
    out["last_ts"] = g["ts"].max()
    return out.reset_index().sort_values(["machine_id", "bucket", "sensor"]).reset_index(drop=True)


def _stored(engine, machine_ids, width_s: int) -> pd.DataFrame:
    start, end = support.START - timedelta(days=400), support.START + timedelta(days=400)
    with engine.connect() as conn:
        got = rollups.read(conn, machine_ids=machine_ids, width_s=width_s, start=start, end=end)
    return got.drop(columns="mean").reset_index(drop=True)


def _messages(engine, machine_ids, width_s: int) -> dict:
    with engine.connect() as conn:
        raw = history.read_hot(conn, machine_ids=machine_ids)
    return raw.groupby(["machine_id", raw["ts"].dt.floor(f"{width_s}s")]).size().to_dict()


def _check(engine, machine_ids) -> None:
    for width in (rollups.HOUR, rollups.DAY):
        expected, got = _expected(engine, machine_ids, width), _stored(engine, machine_ids, width)
        counts = got[got["sensor"] == rollups.MESSAGES]
        keys = zip(counts["machine_id"], counts["bucket"], strict=True)
        assert dict(zip(keys, counts["n"], strict=True)) == _messages(engine, machine_ids, width)
        got = got[got["sensor"] != rollups.MESSAGES].reset_index(drop=True)
        assert len(got) == len(expected)
        pd.testing.assert_frame_equal(got[expected.columns], expected, check_dtype=False, rtol=1e-12)


def test_rollups_equal_pandas_aggregates_also_after_late_data(engine, tmp_path):
    ids = support.register(engine, "acme", ["p1", "p2"])
    machine_ids = [ids["p1"][1], ids["p2"][1]]
    early = support.rows(ids["p1"], seqs=range(0, 3000, 2)) + support.rows(
        ids["p2"], seqs=range(0, 1500), seed=1
    )
    support.write(engine, early)
    url = str(tmp_path / "archive")
    assert rollups.refresh(engine, archive_url=url) > 0
    _check(engine, machine_ids)
    assert rollups.refresh(engine, archive_url=url) == 0  # nothing dirty: nothing to do

    # Late rows (the odd seqs, days old by now) and a replay of rows already stored.
    late = support.rows(ids["p1"], seqs=range(1, 3000, 2))
    assert support.write(engine, late + early[:100]) == len(late)
    rollups.refresh(engine, archive_url=url, batch=7)  # a machine's days split over transactions
    _check(engine, machine_ids)


def test_minute_rollups_only_where_raw_is_finer(engine, tmp_path):
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(0, 200), step_s=61.0))
    support.write(engine, support.rows(ids["p1"], seqs=range(1000, 1400), step_s=7.0, seed=3))
    rollups.refresh(engine, archive_url=str(tmp_path / "archive"))
    minutes = _stored(engine, [ids["p1"][1]], rollups.MINUTE)
    minutes = minutes[minutes["sensor"] != rollups.MESSAGES]
    expected = _expected(engine, [ids["p1"][1]], rollups.MINUTE)
    fine = expected[expected["bucket"] >= support.START + timedelta(seconds=1000 * 7 - 3600)]
    assert len(minutes) > 0 and np.all(minutes["bucket"] >= fine["bucket"].min())


def test_a_refresh_ends_after_one_sweep_while_rows_keep_arriving(engine, tmp_path):
    """Rows logging a swept hour again after each transaction (a live machine) wait for the next run."""
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(0, 120)))  # hours 22, 23 and 00
    url = str(tmp_path / "archive")
    ingest = make_engine(engine.url.render_as_string(hide_password=False))
    arrived = []

    def another_row_in_the_first_hour(dbapi_conn, record) -> None:  # noqa: ANN001 -- a transaction ended
        if len(arrived) < 20:
            seq = 1000 + len(arrived)
            row = support.rows(
                ids["p1"], seqs=range(seq, seq + 1), start=support.START - timedelta(seconds=seq * 61)
            )
            arrived.append(support.write(ingest, row))

    event.listen(engine.pool, "checkin", another_row_in_the_first_hour)
    try:
        assert rollups.refresh(engine, archive_url=url, batch=1) == 3
    finally:
        event.remove(engine.pool, "checkin", another_row_in_the_first_hour)
        ingest.dispose()
    assert arrived == [1] * 4  # one row after each of the sweep's transactions (the last found no marks)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(RollupDirty)) == 1  # hour 22, for the next run
    assert rollups.refresh(engine, archive_url=url) == 1
    _check(engine, [ids["p1"][1]])


def test_a_refresh_makes_no_rollups_retention_deletes_and_the_kept_ones_as_before(engine, tmp_path):
    """History past the horizons (a backfill) only has its marks consumed; younger buckets are exact."""
    ids = support.register(engine, "acme", ["p1"])
    now = support.START + timedelta(days=10)
    settings = Settings(retain_rollup_minute_days=1, retain_rollup_hour_days=3, retain_rollup_day_days=6)
    horizons = retention.rollup_horizons(settings, now)
    batches = [  # past every horizon; a day across the hour horizon; fine rows past minutes; all kept
        support.rows(ids["p1"], seqs=range(0, 100), start=now - timedelta(days=8)),
        support.rows(ids["p1"], seqs=range(100, 300), start=now - timedelta(days=3, hours=2, seconds=6100)),
        support.rows(
            ids["p1"], seqs=range(300, 600), start=now - timedelta(days=2, seconds=2100), step_s=7.0
        ),
        support.rows(
            ids["p1"], seqs=range(600, 1000), start=now - timedelta(hours=2, seconds=4200), step_s=7.0
        ),
    ]
    support.write(engine, [row for batch in batches for row in batch])
    rollups.refresh(engine, archive_url=str(tmp_path / "archive"), horizons=horizons, batch=3)  # a day split

    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(RollupDirty)) == 0
    machine_ids = [ids["p1"][1]]
    for width in (rollups.MINUTE, rollups.HOUR, rollups.DAY):
        got = _stored(engine, machine_ids, width)
        assert len(got) and got["bucket"].min() >= horizons[width]
        counts = got[got["sensor"] == rollups.MESSAGES]
        messages = _messages(engine, machine_ids, width)
        kept = {key: n for key, n in messages.items() if key[1] >= horizons[width]}
        assert (
            dict(zip(zip(counts["machine_id"], counts["bucket"], strict=True), counts["n"], strict=True))
            == kept
        )
        expected = _expected(engine, machine_ids, width)
        expected = expected[expected["bucket"] >= horizons[width]].reset_index(drop=True)
        got = got[got["sensor"] != rollups.MESSAGES].reset_index(drop=True)
        pd.testing.assert_frame_equal(got[expected.columns], expected, check_dtype=False, rtol=1e-12)
