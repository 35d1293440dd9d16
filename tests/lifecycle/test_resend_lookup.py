"""A re-sent file in one large batch: its archived and hot messages are duplicates, a changed hot one is a
conflict (`telemetry.stored_rows` sends the batch's keys as one array, whatever the batch size)."""

from __future__ import annotations

from datetime import timedelta

from fleet import archive, events_store, telemetry
from tests.fleet.test_telemetry_import import run as import_csv
from tests.ingest.support import quarantine_reasons, register_fleet
from tests.lifecycle import support
from tests.lifecycle.test_archive_runs import START, _csv

MESSAGES = 22_000  # 66,000 keys' values: more than the 65,535 parameters a PostgreSQL statement can carry
# A message every 10 minutes: 153 days, 22 weekly partitions on PostgreSQL (every hour: 917 days, 132 of them,
# each made and archived one by one: half the test's time, and nothing the lookup needs).
STEP = timedelta(minutes=10)
ARCHIVED_DAYS = 100


def test_a_re_sent_file_in_one_batch_of_22_000_counts_duplicates_and_a_changed_hot_row_as_a_conflict(
    database_url, engine, tmp_path
):
    register_fleet(engine, "acme", ["1"])
    _csv(tmp_path / "telemetry.csv", [(1, h) for h in range(MESSAGES)], step=STEP)
    assert import_csv(database_url, tmp_path / "telemetry.csv").exit_code == 0
    archive.run(engine, url=str(tmp_path / "archive"), before=START + timedelta(days=ARCHIVED_DAYS))
    lines = (tmp_path / "telemetry.csv").read_text().splitlines()
    lines[-1] = lines[-1].rsplit(",", 1)[0] + ",1.5"  # the last (hot) hour sent again with another value
    (tmp_path / "again.csv").write_text("\n".join(lines) + "\n")

    again = import_csv(database_url, tmp_path / "again.csv", "--batch-size", str(MESSAGES))
    assert again.exit_code == 0, again.output
    assert f"imported 0 new messages, {MESSAGES - 1} stored already, 1 rejected" in again.stdout, again.stdout
    assert f"line {MESSAGES + 1}: seq_conflict" in again.stderr
    assert quarantine_reasons(engine) == ["seq_conflict"]


def test_stored_rows_gives_the_stored_rows_of_the_keys_asked_and_no_others(engine):
    ids = support.register(engine, "acme", ["p1", "p2"])
    written = support.rows(ids["p1"], seqs=range(10)) + support.rows(ids["p2"], seqs=range(5, 15), seed=1)
    support.write(engine, written)
    (customer, p1), (_, p2) = ids["p1"], ids["p2"]
    keys = [(customer, m, s) for m in (p1, p2) for s in range(20)] + [(customer + 1, p1, 3)]
    with engine.connect() as conn:
        found = telemetry.stored_rows(conn, keys)
        assert telemetry.stored_rows(conn, []) == {}
    assert sorted(found) == sorted((r["machine_id"], r["seq"]) for r in written)
    for row in written:
        stored = found[(row["machine_id"], row["seq"])]
        assert (stored["ts"], stored["readings"]) == (row["ts"], row["readings"])


def test_stored_events_takes_a_batch_of_22_000_keys_and_gives_only_the_stored_ones(engine):
    ids = support.register(engine, "acme", ["p1", "p2"])
    (customer, p1), (_, p2) = ids["p1"], ids["p2"]
    written = [
        {
            "customer_id": customer,
            "machine_id": m,
            "seq": s,
            "ts": START + timedelta(hours=s),
            "code": f"E{s}",
            "received_at": START,
        }
        for m, seqs in ((p1, range(10)), (p2, range(5, 15)))
        for s in seqs
    ]
    with engine.begin() as conn:
        events_store.insert_events(conn, written)
    keys = [(customer, m, s) for m in (p1, p2) for s in range(MESSAGES // 2)] + [(customer + 1, p1, 3)]
    with engine.connect() as conn:
        found = events_store.stored_events(conn, keys)
        assert events_store.stored_events(conn, []) == {}
    assert sorted(found) == sorted((e["machine_id"], e["seq"]) for e in written)
    assert all(found[(e["machine_id"], e["seq"])]["code"] == e["code"] for e in written)
