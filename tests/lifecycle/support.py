"""A small fleet with irregular, seeded telemetry, written through the store's one write path."""

from __future__ import annotations

import hashlib
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Connection, Engine, make_url, select, text, update

from fleet import (
    archive,
    archive_owner,
    archive_store,
    erasure_ledger,
    errors,
    history,
    registration,
    retention,
    telemetry,
)
from fleet.settings import Settings
from fleet.tables import ArchiveFile, ArchiveStore, Customer, Machine, ModelVersion
from tests import services
from tests.data import REPO

START = datetime(2026, 9, 28, 22, 0, tzinfo=UTC)
FSYNC = re.compile(r"^\d+\s+f(?:data)?sync\(\d+<(?P<path>[^>]+)>\)\s+= 0$")  # strace pads the pid


def tracer(log: Path, calls: str) -> list[str]:
    """strace tracing these system calls of a child and its threads, fds shown as paths, into `log`."""
    strace = shutil.which("strace")
    if strace is None:
        services.unavailable("strace (the system call tracer)")
    return [strace, "-f", "-qq", "-y", "-e", f"trace={calls}", "-o", str(log)]


def register(engine: Engine, tenant: str, codes: list[str]) -> dict[str, tuple[int, int]]:
    """Register a customer's pumps; returns code -> (customer id, machine id)."""
    machines = [{"tenant": tenant, "machine": code, "machine_type": "pump"} for code in codes]
    registration.register_machines(engine=engine, machines=machines, granted_by="test")
    with engine.connect() as conn:
        query = (
            select(Machine.code, Machine.customer_id, Machine.id)
            .join(Customer, Customer.id == Machine.customer_id)
            .where(Customer.tenant == tenant)
        )
        return {code: (cid, mid) for code, cid, mid in conn.execute(query)}


def rows(
    ids: tuple[int, int], *, seqs: range, start: datetime = START, step_s: float = 61.0, seed: int = 0
) -> list[dict]:
    """Messages with two rounded sensors, an occasional null or missing one, jittered timestamps."""
    rng = np.random.default_rng(seed)
    out = []
    for seq in seqs:
        ts = start + timedelta(seconds=seq * step_s, microseconds=int(rng.integers(0, 999_999)))
        readings: dict = {"temperature_c": round(float(rng.normal(60, 5)), 2)}
        if seq % 7:
            readings["vibration_mm_s"] = float(rng.normal(2, 0.3))  # full precision: stored as float64
        if seq % 11 == 0:
            readings["pressure_bar"] = None
        out.append(
            {
                "customer_id": ids[0],
                "machine_id": ids[1],
                "seq": seq,
                "ts": ts,
                "readings": readings,
                "fw": "1.2" if seq % 2 else None,
                "extra": {"state": "stopped"} if seq % 13 == 0 else None,
                "received_at": ts + timedelta(milliseconds=int(rng.integers(1, 5000))),
            }
        )
    return out


def pump_model(conn: Connection, metrics: dict) -> None:
    """A registered model version `pump-1` for pumps with these metrics."""
    conn.execute(
        ModelVersion.__table__.insert().values(
            version="pump-1", machine_type="pump", kind="test", params={}, artifact=b"", metrics=metrics
        )
    )


def two_months(engine: Engine) -> tuple[int, int]:
    """Acme's pump p1 with six weeks of rows, 20 minutes apart, across September and October."""
    ids = register(engine, "acme", ["p1"])
    write(engine, rows(ids["p1"], seqs=range(3000), step_s=1200.0))
    return ids["p1"]


@contextmanager
def restored_copy(
    engine: Engine, postgres: services.PostgresDatabase | None, tmp_path: Path, *, physical: bool = False
) -> Iterator[Engine]:
    """A second database restored from a backup of this one, as it is now. `physical`: as a copy of the whole
    PostgreSQL cluster (a base backup, a disk snapshot), which keeps the database's identity: the copy's own
    identity is written as the store's owner."""
    engine.dispose()
    if postgres is None:
        copy = tmp_path / "restored.db"
        with sqlite3.connect(make_url(engine.url).database) as source, sqlite3.connect(copy) as target:
            source.backup(target)
        url = f"sqlite:///{copy}"
    else:
        postgres.terminate_connections()  # a template must have no sessions
        restored = services.PostgresDatabase().create(template=postgres.name)
        url = restored.url
    try:
        with services.migrated_engine(url) as copy_engine:
            if physical:
                with copy_engine.begin() as conn:
                    conn.execute(update(ArchiveStore).values(owner=archive_owner.of(conn)))
            yield copy_engine
    finally:
        if postgres is not None:
            restored.drop()


def read_machine(engine: Engine, machine: int, url: str) -> pd.DataFrame:
    """A machine's rows, hot and archived."""
    with engine.connect() as conn:
        return history.read_rows(conn, machine_ids=[machine], archive_url=url)


def archived_files(url: str) -> list[str]:
    """The paths of every file under the archive root but the store folders' markers and erasure ledgers."""
    where = archive.location(url)
    found = where.fs.find(where.root)
    return [p for p in found if not p.endswith(f"/{archive_store.MARKER}") and erasure_ledger.FOLDER not in p]


def to_legacy_layout(engine: Engine, url: str) -> list[str]:
    """Move every registered file to where an archive run before migration 0024 put it, `tenant=…` at the
    root, and register it there; returns those paths."""
    moved = []
    with engine.begin() as conn:
        for file_id, relative in conn.execute(select(ArchiveFile.id, ArchiveFile.path)).all():
            legacy = relative.split("/", 1)[1]
            (Path(url) / legacy).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(Path(url) / relative, Path(url) / legacy)
            conn.execute(update(ArchiveFile).where(ArchiveFile.id == file_id).values(path=legacy))
            moved.append(legacy)
    return moved


def write(engine: Engine, batch: list[dict]) -> int:
    """Store rows as ingest would; returns how many were new."""
    with engine.begin() as conn:
        return telemetry.insert_telemetry(conn, batch)


def quarantine_daily(engine: Engine, first: datetime, days: int) -> None:
    """One bad-JSON quarantine row of tenant acme's p1 a day, from `first` on."""
    with engine.begin() as conn:
        telemetry.insert_quarantine(
            conn,
            [
                {
                    "topic": "fleet/acme/p1/telemetry",
                    "payload": b"x%d" % day,
                    "reason": "bad_json",
                    "detail": "test",
                    "digest": hashlib.sha256(b"x%d" % day).hexdigest(),
                    "received_at": first + timedelta(days=day),
                }
                for day in range(days)
            ],
        )


def waiting_for_locks(engine: Engine) -> int:
    """Sessions of the PostgreSQL database waiting for a lock (a row's or the archive's advisory lock)."""
    query = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with engine.connect() as conn:
        return conn.scalar(text(query))


def two_retention_runs(
    engine: Engine, settings: Settings, now: datetime, holding: AbstractContextManager
) -> list[retention.Plan]:
    """The plans of two retention runs started while `holding` holds a lock, which it lets go once both wait
    for a lock (PostgreSQL)."""
    plans: list[retention.Plan] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            plans.append(retention.run(engine, settings=settings, now=now))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            failures.append(exc)

    runs = [threading.Thread(target=run) for _ in range(2)]
    with holding:
        for thread in runs:
            thread.start()
        while waiting_for_locks(engine) < 2 and all(t.is_alive() for t in runs):
            time.sleep(0.05)
    for thread in runs:
        thread.join()
    assert failures == []
    return plans


def killed_erasure(database_url: str, archive_url: str, tenant: str, *, at: str = "rm") -> None:
    """Erase the tenant in a child process killed (SIGKILL) at its first archive file removal (`at` another
    step: `erase_child`)."""
    child = subprocess.run(
        [sys.executable, "-m", "tests.lifecycle.erase_child", database_url, archive_url, tenant, at],
        cwd=REPO,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL


def failed_erasure(database_url: str, archive_url: str, tenant: str) -> str:
    """Erase the tenant in a child process whose erasure's commit is refused (`erase_child`); what it says."""
    child = subprocess.run(
        [sys.executable, "-m", "tests.lifecycle.erase_child", database_url, archive_url, tenant, "commit"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0 and child.stdout.startswith("failed: "), child.stdout + child.stderr
    return child.stdout


def killed_retention(database_url: str, archive_url: str, now: datetime) -> None:
    """Run retention (hot 14 days, archive 60) in a child process killed (SIGKILL) at its first file removal,
    after the commit that unregistered the expired files."""
    child = subprocess.run(
        [sys.executable, "-m", "tests.lifecycle.retention_child", database_url, archive_url, now.isoformat()],
        cwd=REPO,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL


def archived_file(engine: Engine, tmp_path: Path) -> tuple[str, list[int], Path]:
    """acme's pump with 3000 rows archived: the archive URL, [machine id], and the path of its first file."""
    ids = register(engine, "acme", ["p1"])
    write(engine, rows(ids["p1"], seqs=range(3000)))
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=START + timedelta(days=30))
    with engine.connect() as conn:
        relative = conn.scalar(select(ArchiveFile.path).order_by(ArchiveFile.id))
    return url, [ids["p1"][1]], Path(url) / relative


def reads_refuse(engine: Engine, url: str, machines: list[int], path: Path, *, saying: str) -> None:
    """The machines' reads and the customer's readability check fail naming the file, the reader's words
    (`ArchiveUnreadable.one_line`) holding `saying`."""
    with engine.connect() as conn:
        with pytest.raises(errors.ArchiveUnreadable, match=path.name) as read:
            history.read_rows(conn, machine_ids=machines, archive_url=url)
        assert saying in read.value.one_line()
        with pytest.raises(errors.ArchiveUnreadable, match=path.name):
            archive.check_readable(conn, customer_id=1, url=url)


def two_pumps(engine: Engine) -> tuple[list[int], pd.DataFrame]:
    """acme's pumps p1 and p2 with 400 rows each: their machine ids and their rows as read hot."""
    ids = register(engine, "acme", ["p1", "p2"])
    machines = [pair[1] for pair in ids.values()]
    for n, pair in enumerate(ids.values()):
        write(engine, rows(pair, seqs=range(400), seed=n))
    with engine.connect() as conn:
        return machines, history.read_hot(conn, machine_ids=machines)


def flip_a_byte_of_the_vibration_column(path: Path) -> None:
    """One byte inside the float sensor's compressed values: the footer and every page header stay sound."""
    meta = pq.read_metadata(path).row_group(0)
    chunk = next(
        meta.column(i)
        for i in range(meta.num_columns)
        if meta.column(i).path_in_schema.endswith("vibration_mm_s")
    )
    with open(path, "r+b") as f:
        f.seek(chunk.data_page_offset + chunk.total_compressed_size - 40)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x10]))
