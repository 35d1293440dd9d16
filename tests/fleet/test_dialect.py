"""The dialect module binds and reads timestamps exactly as the column type does, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
from sqlalchemy import insert, select, text

from fleet import dialect
from fleet.tables import Customer

STAMPS = [
    datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
    datetime(2026, 11, 23, 8, 0, 0, 120000, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
]


def _customers(engine) -> list[int]:
    """Customers whose created_at the ORM's column type wrote, one per stamp."""
    with engine.begin() as conn:
        for i, ts in enumerate(STAMPS):
            conn.execute(insert(Customer), {"tenant": f"t{i}", "name": "x", "created_at": ts})
        return list(conn.scalars(select(Customer.id).order_by(Customer.id)))


def test_bound_timestamps_match_what_the_column_type_stores(engine):
    ids = _customers(engine)
    with engine.connect() as conn:
        d = conn.dialect
        as_text = [dialect.ts_param(ts, d) for ts in STAMPS]
        vector = dialect.ts_texts(np.array([ts.astimezone(UTC).replace(tzinfo=None) for ts in STAMPS]), d)
        for i, ts in enumerate(STAMPS):
            for value in (as_text[i], vector[i]):
                found = conn.execute(
                    text("SELECT id FROM customers WHERE created_at = :at"), {"at": value}
                ).scalar()
                assert found == ids[i], (ts, value)


def test_epoch_milliseconds_and_iso_text_agree_with_python(engine):
    ids = _customers(engine)
    with engine.connect() as conn:
        d = conn.dialect
        sql = (
            f"SELECT {dialect.epoch_ms('created_at', d)}, {dialect.iso_text('created_at', d)} FROM customers"
        )
        rows = conn.execute(text(sql + " ORDER BY id")).all()
    assert len(rows) == len(ids)
    for (ms, iso), ts in zip(rows, STAMPS, strict=True):
        utc = ts.astimezone(UTC)
        assert ms == round(utc.timestamp() * 1000)
        assert iso == utc.isoformat().replace("+00:00", "Z")


def test_insert_new_skips_stored_keys(engine):
    rows = [(f"t{i}", f"name {i}", False, dialect.ts_param(STAMPS[i], engine.dialect)) for i in range(2)]
    columns = ("tenant", "name", "auto_registered", "created_at")
    with engine.begin() as conn:
        assert dialect.insert_new(conn, table="customers", columns=columns, key=["tenant"], rows=rows) == 2
    more = rows + [("t2", "name 2", False, dialect.ts_param(STAMPS[2], engine.dialect))]
    with engine.begin() as conn:
        assert dialect.insert_new(conn, table="customers", columns=columns, key=["tenant"], rows=more) == 1
    with engine.connect() as conn:
        stored = conn.execute(select(Customer.tenant, Customer.created_at).order_by(Customer.id)).all()
    assert stored == [(f"t{i}", ts.astimezone(UTC)) for i, ts in enumerate(STAMPS)]


def test_insert_new_counts_across_statement_chunks(engine):
    """SQLite writes 2^k-row statements: 1337 rows span 512, 512, 256, 32, 16, 8, 1; none lost or doubled."""
    columns = ("tenant", "name", "auto_registered", "created_at")
    at = dialect.ts_param(STAMPS[0], engine.dialect)
    rows = [(f"t{i}", f"name {i}", False, at) for i in range(1337)]
    for batch, new in ((rows[:700], 700), (rows, 637)):
        with engine.begin() as conn:
            stored = dialect.insert_new(conn, table="customers", columns=columns, key=["tenant"], rows=batch)
        assert stored == new
    with engine.connect() as conn:
        names = conn.execute(select(Customer.tenant, Customer.name).order_by(Customer.id)).all()
    assert names == [(f"t{i}", f"name {i}") for i in range(1337)]


def test_insert_new_in_key_order_keeps_the_first_row_of_a_key(engine):
    """SQLite inserts in key order when asked (ids follow the key); the first row of a key still wins."""
    columns = ("tenant", "name", "auto_registered", "created_at")
    at = dialect.ts_param(STAMPS[0], engine.dialect)
    rows = [("t2", "first t2", False, at), ("t1", "t1", False, at), ("t2", "second t2", False, at)]
    with engine.begin() as conn:
        stored = dialect.insert_new(
            conn, table="customers", columns=columns, key=["tenant"], rows=rows, key_order=True
        )
    assert stored == 2
    with engine.connect() as conn:
        found = conn.execute(select(Customer.tenant, Customer.name).order_by(Customer.id)).all()
    assert sorted(found) == [("t1", "t1"), ("t2", "first t2")]
    if engine.dialect.name == "sqlite":
        assert found == [("t1", "t1"), ("t2", "first t2")]
