"""The storage benchmark's round-trip check: columnar digests that see one changed value, timestamp or row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest

from benchmarks import storage
from fleet import archive, archive_format, history
from tests.lifecycle import support


def test_read_hot_gives_every_timestamp_and_value_as_written(engine):
    ids = support.register(engine, "acme", ["p1"])
    rows = support.rows(ids["p1"], seqs=range(400))  # microsecond timestamps, nulls, absent keys, extra
    support.write(engine, rows)
    with engine.connect() as conn:
        frame = history.read_hot(conn, machine_ids=[ids["p1"][1]])
    assert frame["ts"].tolist() == [pd.Timestamp(r["ts"]) for r in rows]
    assert frame["received_at"].tolist() == [pd.Timestamp(r["received_at"]) for r in rows]
    assert frame["readings"].tolist() == [r["readings"] for r in rows]
    assert frame["extra"].tolist() == [r["extra"] for r in rows]
    assert [f if isinstance(f, str) else None for f in frame["fw"]] == [r["fw"] for r in rows]


def _nudge_value(frame: pd.DataFrame) -> pd.DataFrame:
    frame.at[10, "readings"]["temperature_c"] += 0.01
    return frame


def _nudge_ts(frame: pd.DataFrame) -> pd.DataFrame:
    frame.at[20, "received_at"] += timedelta(microseconds=1)
    return frame


def _null_to_absent(frame: pd.DataFrame) -> pd.DataFrame:
    del frame.at[0, "readings"]["pressure_bar"]  # seq 0 sent it as null
    return frame


def _drop_row(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(index=30)


@pytest.mark.parametrize("change", [_nudge_value, _nudge_ts, _null_to_absent, _drop_row])
def test_the_check_sees_one_changed_value_timestamp_null_or_row(engine, tmp_path, change: Callable):
    ids = support.register(engine, "acme", ["p1", "p2"])
    rows = support.rows(ids["p1"], seqs=range(600)) + support.rows(ids["p2"], seqs=range(300))
    support.write(engine, rows)
    machines = [ids["p1"][1], ids["p2"][1]]
    url = str(tmp_path / "archive")
    hot = storage.digests(engine, machines, storage.hot_digest)
    archive.run(engine, url=url, before=support.START + timedelta(days=30))

    def archived() -> dict:
        return storage.digests(engine, machines, lambda conn, m: storage.archive_digest(conn, m, url))

    check = storage.compared(hot, archived())
    readings = sum(v is not None for r in rows for v in r["readings"].values())
    assert check["lossless"] and (check["rows"], check["readings"]) == (900, readings)
    where = archive.location(url)
    path = next(p for p in where.fs.find(where.root) if p.endswith(".parquet"))
    table = archive_format.encode(change(archive_format.decode(pq.read_table(path))))
    pq.write_table(table, path, **archive_format.write_options(table))
    assert not storage.compared(hot, archived())["lossless"]
