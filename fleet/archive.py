"""The Parquet archive: telemetry older than the hot window moves to files per tenant and month.

A move writes the file first (`durable`: whole and fsynced, so a power loss after the delete cannot take it),
then in one transaction registers it, records its keys as runs of evenly stepped seqs in `archived_ranges`
(`seq_runs`) and deletes exactly those rows. A kill between the two leaves an unregistered file, which readers
never list and the next run deletes; so a rerun loses and duplicates nothing. The insert trigger (migrations
0015, 0028) skips a row whose seq is one of an archived run's: a re-sent message then counts as a duplicate,
as it would while its row was hot; a seq between a run's steps (a message that never came) is stored when it
comes.

On PostgreSQL (telemetry partitioned by week, `fleet.partitions`) a week wholly older than the cutoff moves
as one: its files are written, then one transaction registers them all and drops the partition instead of
deleting its rows. If a row of that week changed meanwhile (a late message), or a transaction holds the table
past the lock timeout (the week is then named in `Report.partitions_busy`), the drop is skipped and its files
discarded, and the rows move by key like those of the week the cutoff falls in.
"""

from __future__ import annotations

import io
import re
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.implementations.memory import MemoryFileSystem
from sqlalchemy import Connection, Engine, Select, bindparam, func, insert, select, text

from fleet import archive_format, archive_store, db, durable, erasure_ledger, errors, partitions
from fleet.archive_location import Location, location  # `archive.location` to its callers
from fleet.archive_lock import exclusive  # `archive.exclusive` to its callers
from fleet.settings import PARTITION_LOCK_TIMEOUT_S
from fleet.tables import ArchivedRange, ArchiveFile, Customer, Telemetry

FILES_PER_BATCH_ROWS = 500_000
# Pages written with a CRC (`archive_format.write_options`) are checked as they are read.
VERIFY = {"page_checksum_verification": True}


@dataclass
class Report:
    """What one archive run moved."""

    files: int = 0
    rows: int = 0
    readings: int = 0
    bytes: int = 0
    orphans_removed: int = 0
    partitions_dropped: int = 0
    # Weeks a transaction held past the run's lock timeout: left as they were, their rows moved by key.
    partitions_busy: list[str] = field(default_factory=list)
    seconds: float = 0.0


def seq_runs(machine_ids: np.ndarray, seqs: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(machine, first seq, last seq, step) of each run of a machine's distinct seqs that step evenly.

    From the lowest seq, a run takes the seqs after it while they keep the step to its second; the next
    seq starts the next run. Seqs counted up by one make a run per unbroken stretch, as before migration
    0028, and no seqs make more runs than such stretches; hourly seqs in milliseconds make one run until an
    hour is missing.
    """
    order = np.lexsort((seqs, machine_ids))
    m, s = machine_ids[order].astype(np.int64), seqs[order].astype(np.int64)
    # 0 between two machines' seqs: a machine's distinct seqs step by 1 or more.
    step = np.where(np.diff(m) == 0, np.diff(s), 0)
    last = np.flatnonzero(np.append(step[1:] != step[:-1], True))  # where each stretch of one step ends
    end = last[np.searchsorted(last, np.arange(len(step)))] + 1  # per seq: the last of the run it would start
    runs, at = [], 0
    while at < len(s):
        if at == len(s) - 1 or step[at] == 0:
            runs.append((int(m[at]), int(s[at]), int(s[at]), 1))
            at += 1
            continue
        runs.append((int(m[at]), int(s[at]), int(s[end[at]]), int(step[at])))
        at = int(end[at]) + 1
    return runs


def _month(ts: pd.Series) -> pd.Series:
    return ts.dt.strftime("%Y-%m")


def _registered(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(select(ArchiveFile.path)))


def remove_orphans(engine: Engine, where: Location) -> int:
    """Delete files no committed move registered (left by a killed run), unless an archive run is on."""
    with exclusive(engine, wait=False) as alone:
        return _sweep(engine, where) if alone else 0


# The names `_files` gives, and the parts of them a run killed as it wrote leaves (`durable.left`), and of the
# store's marker: another Parquet file under the root (an analyst's, a copy) is not ours to delete.
_PART = r"part-[0-9a-f]{32}\.parquet"
_WRITTEN = re.compile(
    rf"(^|/)(tenant=[^/]+/month=\d{{4}}-\d{{2}}/({_PART}|{durable.left(_PART)})"
    rf"|store=[^/]+/{durable.left(re.escape(archive_store.MARKER))})$"
)


def _sweep(engine: Engine, where: Location, *, rows_before: datetime | None = None) -> int:
    """Delete the unregistered files in this database's folder (with `rows_before`, only those whose every row
    is older); the caller holds `exclusive`. Another deployment's folder, and the root, are not looked in."""
    ours = where.path(archive_store.checked(engine, where))
    if not where.fs.exists(ours):
        return 0
    registered = {where.path(p) for p in _registered(engine)}
    found = [p for p in where.fs.find(ours) if _WRITTEN.search(p)]
    orphans = [p for p in found if p not in registered and "/" + p not in registered]
    if rows_before is not None:
        orphans = [p for p in orphans if all_before(where, p, rows_before)]
    for path in orphans:
        where.fs.rm(path)
    return len(orphans)


def read_file(where: Location, path: str, **how) -> pa.Table:
    """`pyarrow.parquet.read_table` of one file (`how`: columns, filters), once its footer shows no
    decompression bomb (`archive_format.check_inflation`); page checksums verified."""
    archive_format.check_inflation(pq.read_metadata(path, filesystem=where.fs))
    return pq.read_table(path, filesystem=where.fs, **how, **VERIFY)


def all_before(where: Location, path: str, before: datetime) -> bool:
    """Whether every row of this file is older than `before`; False when it cannot be read."""
    try:
        newest = read_file(where, path, columns=["ts"]).column("ts")
    except (OSError, pa.ArrowException):
        return False  # an unreadable orphan is an archive run's to sweep
    return len(newest) > 0 and pc.max(newest).as_py() < before


def remove_expired_orphans(engine: Engine, where: Location, *, before: datetime) -> int:
    """Delete unregistered files all of whose rows are older than `before`: those an expiry unregistered and a
    killed retention run left behind. The caller holds `exclusive`. Files with newer rows stay, so an archive
    read against the wrong (e.g. an empty) database loses nothing that was not expired anyway."""
    return _sweep(engine, where, rows_before=before)


def _candidates(engine: Engine, before: datetime, start: datetime | None) -> list[tuple[int, str, int, int]]:
    """(customer id, tenant, machine id, rows) of machines with hot rows in [start, before)."""
    query = (
        select(Telemetry.customer_id, Customer.tenant, Telemetry.machine_id, func.count())
        .join(Customer, Customer.id == Telemetry.customer_id)
        .where(Telemetry.ts < before, *([Telemetry.ts >= start] if start is not None else []))
        .group_by(Telemetry.customer_id, Customer.tenant, Telemetry.machine_id)
        .order_by(Telemetry.customer_id, Telemetry.machine_id)
    )
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def _batches(candidates, max_rows: int):
    """Groups of one customer's machines of at most about `max_rows` rows."""
    group: list[int] = []
    rows = 0
    current = None
    for customer_id, tenant, machine_id, n in candidates:
        if group and ((customer_id, tenant) != current or rows + n > max_rows):
            yield current, group
            group, rows = [], 0
        current = (customer_id, tenant)
        group.append(machine_id)
        rows += n
    if group:
        yield current, group


def _write(where: Location, relative: str, table: pa.Table) -> int:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **archive_format.write_options(table))
    data = buffer.getvalue()
    # Before its rows are deleted; whole: a full disk leaves no truncated file for a reader of the folder.
    durable.write(where.fs, where.path(relative), data, root=where.root)
    return len(data)


@dataclass(frozen=True)
class _File:
    """One written (not yet registered) archive file: what its registration records."""

    customer_id: int
    month: str
    relative: str
    rows: int
    readings: int
    bytes: int
    ts_min: datetime
    ts_max: datetime
    runs: list[tuple[int, int, int, int]]


def _files(engine: Engine, where: Location, *, before, start, max_rows, after_write):
    """Write the hot rows in [start, before) to files, a customer's machines and a month each; yields them."""
    from fleet import history  # history reads through this module

    ours = archive_store.folder(engine)
    for (customer_id, tenant), machines in _batches(_candidates(engine, before, start), max_rows):
        with engine.connect() as conn:
            frame = history.read_hot(
                conn, machine_ids=machines, start=start, end=before, customer_id=customer_id
            )
        for month, part in frame.groupby(_month(frame["ts"]), sort=True):
            relative = f"{ours}/tenant={tenant}/month={month}/part-{uuid.uuid4().hex}.parquet"
            size = _write(where, relative, archive_format.encode(part))
            if after_write:
                after_write(relative)
            yield _File(
                customer_id=customer_id,
                month=month,
                relative=relative,
                rows=len(part),
                readings=int(sum(sum(v is not None for v in r.values()) for r in part["readings"])),
                bytes=size,
                ts_min=part["ts"].min().to_pydatetime(),
                ts_max=part["ts"].max().to_pydatetime(),
                runs=seq_runs(part["machine_id"].to_numpy(), part["seq"].to_numpy()),
            )


def _register(conn: Connection, file: _File) -> None:
    """Register a written file and its keys as archived seq runs."""
    file_id = conn.execute(
        insert(ArchiveFile)
        .values(
            customer_id=file.customer_id,
            month=file.month,
            path=file.relative,
            rows=file.rows,
            readings=file.readings,
            bytes=file.bytes,
            ts_min=file.ts_min,
            ts_max=file.ts_max,
            created_at=datetime.now(UTC),
        )
        .returning(ArchiveFile.id)
    ).scalar_one()
    conn.execute(
        insert(ArchivedRange),
        [
            {"machine_id": m, "seq_lo": lo, "seq_hi": hi, "seq_step": step, "file_id": file_id}
            for m, lo, hi, step in file.runs
        ],
    )


# Only a run's own seqs: a row between its steps is not in the file (it came late, or is newer than the
# cutoff) and stays hot.
_DELETE_RUN = text(
    "DELETE FROM telemetry WHERE machine_id = :m AND seq BETWEEN :lo AND :hi AND (seq - :lo) % :step = 0"
)


def _commit(conn: Connection, file: _File) -> None:
    """Register a file and delete exactly its rows from the hot table."""
    _register(conn, file)
    deleted = conn.execute(
        _DELETE_RUN, [{"m": m, "lo": lo, "hi": hi, "step": step} for m, lo, hi, step in file.runs]
    ).rowcount
    if deleted != file.rows:
        raise RuntimeError(f"archive move deleted {deleted} rows for a file of {file.rows}; rolled back")


def _count(report: Report, file: _File) -> None:
    report.files += 1
    report.rows += file.rows
    report.readings += file.readings
    report.bytes += file.bytes


def _move_partition(
    engine: Engine, where: Location, part: partitions.Partition, report: Report, lock_timeout_s: float, **how
) -> None:
    """Move a whole week: write its files, then register them and drop the partition in one transaction."""
    mark = partitions.watch(engine, part, lock_timeout_s=lock_timeout_s)
    if mark is None:
        report.partitions_busy.append(part.name)
        return
    written = list(_files(engine, where, before=part.hi, start=part.lo, **how))
    with engine.begin() as conn:
        busy = report.partitions_busy
        dropped = partitions.drop_unchanged(conn, part, mark=mark, busy=busy, lock_timeout_s=lock_timeout_s)
        if dropped:
            for file in written:
                _register(conn, file)
    if dropped:
        for file in written:
            _count(report, file)
        report.partitions_dropped += 1
        return
    for file in written:  # never registered: the rows move by key below, with new files
        where.fs.rm(where.path(file.relative))


def run(
    engine: Engine,
    *,
    url: str,
    before: datetime,
    max_rows: int = FILES_PER_BATCH_ROWS,
    after_write: Callable[[str], None] | None = None,
    lock_timeout_s: float = PARTITION_LOCK_TIMEOUT_S,
) -> Report:
    """Move hot rows with ts < `before` to Parquet; idempotent, and safe to kill and rerun.

    A second run at once waits for the first (`exclusive`): each deletes files no move registered.
    `after_write` is called between a file's write and its commit (the crash test kills the process there).
    PostgreSQL: a week whose table a transaction holds past `lock_timeout_s` is left in `partitions_busy`.
    """
    with exclusive(engine, wait=True):
        how = {"max_rows": max_rows, "after_write": after_write}
        return _run(engine, url=url, before=before, lock_timeout_s=lock_timeout_s, **how)


def _run(
    engine: Engine, *, url: str, before: datetime, max_rows: int, after_write, lock_timeout_s: float
) -> Report:
    started = time.perf_counter()
    where = location(url)
    if isinstance(where.fs, MemoryFileSystem):  # its files end with this process, the rows moved there too
        raise errors.InvalidInput(
            f"the archive URL {url} keeps files in this process's memory only: rows archived there would be "
            "lost when it ends, so nothing was archived; set a folder or object storage (s3://…)"
        )
    archive_store.claim(engine, where)  # a copy of this database sharing the folder stops here
    erasure_ledger.check(engine, where)  # put back from before an erasure: its rows must not archive again
    report = Report(orphans_removed=_sweep(engine, where))
    how = {"max_rows": max_rows, "after_write": after_write}
    # PostgreSQL: old rows get their weeks, which may then move whole
    partitions.split_default(engine, busy=report.partitions_busy, lock_timeout_s=lock_timeout_s)
    for part in partitions.whole_before(engine, before):
        _move_partition(engine, where, part, report, lock_timeout_s, **how)
    for file in _files(engine, where, before=before, start=None, **how):
        with engine.begin() as conn:
            _commit(conn, file)
        _count(report, file)
    report.seconds = time.perf_counter() - started
    return report


def files_for(
    conn: Connection, *, machine_ids: Sequence[int], start: datetime | None, end: datetime | None
) -> list[str]:
    """Registered files holding rows of these machines that may fall in [start, end)."""
    query = _FILES_FOR[start is not None, end is not None]
    params = {"machines": [int(m) for m in machine_ids], "start": start, "end": end}
    return list(conn.scalars(query, params))


def _files_for(*, start: bool, end: bool) -> Select:
    # The archived key runs name their file: only files with rows of these machines are opened.
    holding = select(ArchivedRange.file_id).where(
        ArchivedRange.machine_id.in_(bindparam("machines", expanding=True))
    )
    query = select(ArchiveFile.path).where(ArchiveFile.id.in_(holding))
    if start:
        query = query.where(ArchiveFile.ts_max >= bindparam("start"))
    if end:
        query = query.where(ArchiveFile.ts_min < bindparam("end"))
    return query.order_by(ArchiveFile.id)


# Built once: building the expressions each call cost ~0.4 ms more (0.6 -> 0.2 ms a call, load 5).
_FILES_FOR = {(a, b): _files_for(start=a, end=b) for a in (False, True) for b in (False, True)}


def tables(
    conn: Connection,
    *,
    url: str,
    machine_ids: Sequence[int],
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[pa.Table]:
    """Archived rows of these machines in [start, end) as their files hold them (`archive_format`)."""
    paths = files_for(conn, machine_ids=machine_ids, start=start, end=end)
    where = location(url)
    filters = [("machine_id", "in", [int(m) for m in machine_ids])]
    if start is not None:
        filters.append(("ts", ">=", pd.Timestamp(start)))
    if end is not None:
        filters.append(("ts", "<", pd.Timestamp(end)))
    found = (_read_table(conn, where, p, filters) for p in paths)
    return [table for table in found if table is not None and table.num_rows]


def _read_table(conn: Connection, where: Location, relative: str, filters: list) -> pa.Table | None:
    """One registered file's rows; None when retention or an erasure removed it since it was listed."""
    try:
        with _reading(conn, where, relative):
            table = read_file(where, where.path(relative), filters=filters)
            archive_format.check(table.schema)
            return table
    except _Unregistered:
        return None


def check_readable(conn: Connection, *, customer_id: int, url: str) -> None:
    """ArchiveUnreadable unless every registered file of the customer reads whole: each row group is
    decoded (a damaged column chunk behind a sound footer fails here) and the rows add up to those
    registered. One row group in memory at a time."""
    where = location(url)
    query = select(ArchiveFile.path, ArchiveFile.rows).where(ArchiveFile.customer_id == customer_id)
    for relative, registered in conn.execute(query).all():
        try:
            with _reading(conn, where, relative):
                rows = _rows_read(where, relative)
                if rows != registered:
                    raise OSError(f"it holds {rows} rows, {registered} were archived into it")
        except _Unregistered:
            continue


def _rows_read(where: Location, relative: str) -> int:
    """A file's rows, read whole a row group at a time; its reader ends with this call, even on an error."""
    with where.fs.open(where.path(relative), "rb") as raw:
        parquet = pq.ParquetFile(raw, **VERIFY)
        archive_format.check(parquet.schema_arrow)
        archive_format.check_inflation(parquet.metadata)
        rows = 0
        for i in range(parquet.num_row_groups):  # not a generator: its closure would keep the reader alive
            rows += parquet.read_row_group(i).num_rows
        return rows


class _Unregistered(Exception):
    """A listed file that failed to read because retention or an erasure unregistered and removed it."""


@contextmanager
def _reading(conn: Connection, where: Location, relative: str) -> Iterator[None]:
    """Reading a registered file: ArchiveUnreadable naming its month and file when it cannot be read, or
    _Unregistered when the catalog no longer lists it (retention deletes the row before the file)."""
    try:
        yield
    except (OSError, pa.ArrowException) as exc:
        from fleet import erasure  # erasure removes files through this module

        # The reader's frames hold its half-open ParquetFile and file: released now, not when the interpreter
        # finalizes (a CLI keeps the error to its exit), where pyarrow objects torn down late can abort.
        traceback.clear_frames(exc.__traceback__)

        # A new connection: the reader's own transaction (SQLite's snapshot) may predate the expiry. It only
        # reads: a reader that holds SQLite's write lock (a rollup refresh) would wait on itself for another.
        with conn.engine.connect().execution_options(**{db.WRITE_LOCK_OPTION: False}) as now:
            owner = now.execute(
                select(Customer.id, Customer.tenant)
                .join(ArchiveFile, ArchiveFile.customer_id == Customer.id)
                .where(ArchiveFile.path == relative)
            ).first()
            if owner is None:
                raise _Unregistered(relative) from exc
            erasing = erasure.to_finish(now, [owner]).get(owner.id)
            store = archive_store.folder_in(now)
            erased = dict(erasure_ledger.restored(now, where, store)).get(owner.tenant) if store else None
        kind = {FileNotFoundError: "missing", PermissionError: "not permitted"}.get(type(exc), "damaged")
        month = next((part[6:] for part in relative.split("/") if part.startswith("month=")), "?")
        # Restoring a file an erasure removed would bring back data the customer had erased.
        if erasing:
            fix = f"the customer's erasure began and did not complete: `{erasing}` completes it"
        elif erased:
            fix = (
                f"the customer was erased {erased.at} as {erased.pseudonym} and this database put back from "
                f"a copy older than that: `{erasure_ledger.REAPPLY}` erases it again"
            )
        else:
            fix = "restore it from a backup; other months read as before"
        raise errors.ArchiveUnreadable(
            f"archive month {month} cannot be read: its file {relative} is {kind} ({fix})",
            path=where.path(relative),
        ) from exc


def read(
    conn: Connection,
    *,
    url: str,
    machine_ids: Sequence[int],
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Archived rows of these machines in [start, end), as `history.read_hot` gives hot ones."""
    from fleet import history

    found = tables(conn, url=url, machine_ids=machine_ids, start=start, end=end)
    if not found:
        return history.empty()
    return pd.concat([archive_format.decode(t) for t in found], ignore_index=True)
