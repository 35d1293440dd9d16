"""Erasing one of three customers leaves none of its ids, codes or payload bytes in any table or file."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
from sqlalchemy import func, select

from api import auth
from fleet import archive, erasure, rollups, telemetry
from fleet.tables import Base, ErasureReceipt, ModelVersion, WorkflowEvent
from tests.lifecycle import support

MARKER = 987654.321  # a reading only the erased customer sent
TENANTS = {"tenant-alpha": ["alpha-m1"], "zeta-erase": ["zeta-m1", "zeta-m2"], "tenant-gamma": ["gamma-m1"]}


def _rows_by_customer(engine, customer_ids) -> dict[str, dict[int, int]]:
    out = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if "customer_id" in table.c and table.name != "workflow_events":
                query = select(table.c.customer_id, func.count()).group_by(table.c.customer_id)
                out[table.name] = {c: n for c, n in conn.execute(query) if c in customer_ids}
    return out


def _setup(engine, url):
    ids = {t: support.register(engine, t, codes) for t, codes in TENANTS.items()}
    for n, (tenant, machines) in enumerate(ids.items()):
        for pair in machines.values():
            rows = support.rows(pair, seqs=range(0, 800), step_s=600.0, seed=n)
            if tenant == "zeta-erase":
                rows[5]["readings"]["temperature_c"] = MARKER
            support.write(engine, rows)
        auth.create_user(
            engine=engine,
            name=f"{tenant}-user",
            role="customer",
            customer=tenant,
            email=f"{tenant}@x.example",
        )
    with engine.begin() as conn:
        telemetry.insert_quarantine(
            conn,
            [
                {
                    "topic": f"fleet/{t}/{TENANTS[t][0]}/telemetry",
                    "payload": f"not json from {t}".encode(),
                    "reason": "bad_json",
                    "detail": "test",
                    "digest": hashlib.sha256(t.encode()).hexdigest(),
                    "received_at": datetime.now(UTC),
                }
                for t in TENANTS
            ],
        )
        support.pump_model(conn, {"tenants": list(TENANTS), "per_machine": {"zeta-m1": 0.5}})
    rollups.refresh(engine, archive_url=url)
    archive.run(engine, url=url, before=support.START + timedelta(days=3))
    return ids


def test_erasing_one_of_three_customers_leaves_no_trace_but_the_receipt(engine, tmp_path):
    url = str(tmp_path / "archive")
    ids = _setup(engine, url)
    zeta_customer = next(iter(ids["zeta-erase"].values()))[0]
    zeta_machines = {m for _, m in ids["zeta-erase"].values()}
    others = {next(iter(ids[t].values()))[0] for t in ("tenant-alpha", "tenant-gamma")}
    before = _rows_by_customer(engine, others)

    receipt = erasure.erase(
        engine,
        tenant="zeta-erase",
        confirm="zeta-erase",
        by="cli:test",
        archive_url=url,
        now=datetime.now(UTC),
    )

    counts = receipt["counts"]
    assert counts["telemetry"] > 0 and counts["archive_files"] > 0 and counts["archive_rows"] > 0
    assert counts["telemetry_rollups"] > 0 and counts["machines"] == 2 and counts["users"] == 1
    assert counts["api_keys"] == 1 and counts["quarantine"] == 1 and counts["model_versions_marked"] == 1
    assert _rows_by_customer(engine, others) == before  # the other two: not a row less

    needles = ["zeta-erase", "zeta-m1", "zeta-m2", "zeta-erase@x", str(MARKER)]
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                text = repr(dict(row))
                for needle in needles:
                    assert needle not in text, (table.name, needle, text[:300])
                if "customer_id" in table.c:
                    assert row["customer_id"] != zeta_customer, table.name
                if "machine_id" in table.c:
                    assert row["machine_id"] not in zeta_machines, table.name
        pseudonymised = conn.scalar(
            select(func.count()).select_from(WorkflowEvent).where(WorkflowEvent.data.is_not(None))
        )
        stored = conn.execute(select(ErasureReceipt)).mappings().one()
        model = conn.execute(select(ModelVersion)).mappings().one()
    assert pseudonymised > 0 and stored["pseudonym"] == receipt["pseudonym"]
    assert receipt["pseudonym"] in model["retrain_reason"]
    files = support.archived_files(url)
    assert files and all("zeta" not in p for p in files)
    for path in files:
        table = pq.read_table(path)
        assert zeta_customer not in table.column("customer_id").to_pylist()
        assert not set(table.column("machine_id").to_pylist()) & zeta_machines
        with open(path, "rb") as f:
            raw = f.read()
        assert all(n.encode() not in raw for n in needles)
