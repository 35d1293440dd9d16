"""An export reads the months a machine has rows in, not every month between its first and its last row."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from fleet import archive, export, partitions
from tests.lifecycle import support


def test_rows_years_apart_cost_the_months_they_are_in(engine, tmp_path):
    # A machine whose clock reset to 2000-01-01 (the ingest floor) once: before, its export read all 324
    # months up to 2026-12, each an empty query of the hot rows and of the archive (6.6 s a machine).
    ids = support.register(engine, "acme", ["p1", "p2"])
    url = str(tmp_path / "archive")
    p1, p2 = ids["p1"], ids["p2"]
    support.write(engine, support.rows(p1, seqs=range(3), start=datetime(2000, 1, 1, tzinfo=UTC), step_s=60))
    support.write(engine, support.rows(p1, seqs=range(3, 300), step_s=3600.0))  # from 2026-09-28, 2 months
    support.write(engine, support.rows(p2, seqs=range(200), step_s=3600.0, seed=1))
    archive.run(engine, url=url, before=support.START + timedelta(days=2))  # some of them archived
    late = datetime(2026, 8, 15, tzinfo=UTC)  # a late row, hot, older than the archived ones
    support.write(engine, support.rows(p1, seqs=range(300, 301), start=late - 300 * timedelta(seconds=61)))
    statements = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    data = b"".join(export.stream(engine, tenant="acme", archive_url=url))
    event.remove(engine, "before_cursor_execute", count)
    zipped = zipfile.ZipFile(io.BytesIO(data))
    pieces = sorted(n.removesuffix(".parquet") for n in zipped.namelist() if n.endswith(".parquet"))
    telemetry = [n for n in pieces if n.startswith("telemetry/")]
    assert telemetry == [
        f"telemetry/machine={p1[1]}/2000-01",
        f"telemetry/machine={p1[1]}/2026-08",
        f"telemetry/machine={p1[1]}/2026-09",
        f"telemetry/machine={p1[1]}/2026-10",
        f"telemetry/machine={p2[1]}/2026-09",
        f"telemetry/machine={p2[1]}/2026-10",
    ]
    assert json.loads(zipped.read("manifest.json"))["telemetry"]["rows"] == 501
    assert len(statements) < 80, len(statements)  # before: 2,000 and more


def test_rows_an_archive_run_moves_while_the_export_finds_their_months_are_exported(engine, tmp_path):
    ids = support.register(engine, "acme", ["p1"])
    url = str(tmp_path / "archive")
    support.write(engine, support.rows(ids["p1"], seqs=range(100), step_s=3600.0))  # 2026-09 and -10
    partitions.split_default(engine)  # PostgreSQL: the week's partition, made before the export reads
    moved = []

    def move_once(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        # Right after the export first looks for the machine's months, hot or archived: every row moves,
        # by key (its week is not wholly past the cutoff: no partition drop, which would wait on the read).
        if not moved and ("min(telemetry.ts)" in statement or "archive_files.month" in statement):
            moved.append(archive.run(engine, url=url, before=support.START + timedelta(days=5)).rows)

    event.listen(engine, "after_cursor_execute", move_once)
    data = b"".join(export.stream(engine, tenant="acme", archive_url=url))
    event.remove(engine, "after_cursor_execute", move_once)
    assert moved == [100]
    # Before, on PostgreSQL (each statement sees what committed before it): the archived months were looked
    # at first (none yet), then the hot ones (moved by then): an export without telemetry.
    assert json.loads(zipfile.ZipFile(io.BytesIO(data)).read("manifest.json"))["telemetry"]["rows"] == 100
