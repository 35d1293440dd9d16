"""Retention per data class: what is older than its setting goes; `dry_run` only counts it.

Hot telemetry older than `hot_days` moves to the archive (rollups refreshed first); archive files,
rollups per resolution, quarantine rows, predictions and audit rows past their days are deleted. Audit
rows (the workflow events) are kept at least `audit_floor_days`, whatever `retain_audit_days` says.
Dead-lettered erasure announcements lose the account's ids `erasure_notices.KEEP_DEAD_DAYS` after their
last attempt, notices no router with their CRM destination took as long after the erasure.
On PostgreSQL a run also makes the telemetry partitions of the coming weeks, and the archive step drops
the partitions of weeks wholly past the hot window (`fleet.partitions`, `fleet.archive`).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.sql import ColumnElement

from fleet import (
    archive,
    archive_legacy,
    archive_store,
    audit_maintenance,
    display,
    erasure_ledger,
    erasure_notices,
    partitions,
    progress,
    rollups,
)
from fleet.db import for_writing
from fleet.settings import Settings
from fleet.tables import ArchiveFile, Prediction, Quarantine, Rollup, Telemetry, WorkflowEvent

DEAD_ERASURE_EVENTS = "dead_erasure_events"


@dataclass
class Step:
    """One data class: its cutoff and the rows (or files) older than it."""

    data_class: str
    cutoff: datetime
    count: int
    action: str  # "delete", "archive" or "drop the account ids of"
    noun: str = "row"  # what `count` counts, as the command's line names it
    note: str = ""  # what else the step did: the files a killed run left, which it removed


@dataclass
class Plan:
    """What a retention run removes (or would remove, when dry)."""

    now: datetime
    dry_run: bool
    steps: list[Step] = field(default_factory=list)
    done: list[str] = field(default_factory=list)  # steps finished (committed), in order

    def stopped(self, names: list[str]) -> str:
        """Which of the run's steps `names` were done and which not, and how to finish: one line."""
        left = [n for n in names if n not in self.done]
        if left:
            left[0] = f"{left[0]} (where it stopped)"
        done, not_done = ", ".join(self.done) or "none", ", ".join(left) or "none"
        return (
            f"retention steps done: {done}; not done: {not_done}; `servicecast retention run` again does "
            "them (a done step only finds what passed its cutoff since)"
        )


def _rollup_days(settings: Settings) -> dict[str, float | None]:
    """Days each rollup width (a `rollups.WIDTHS` name) is kept."""
    return {
        "minute": settings.retain_rollup_minute_days,
        "hour": settings.retain_rollup_hour_days,
        "day": settings.retain_rollup_day_days,
    }


def rollup_horizons(settings: Settings, now: datetime) -> dict[int, datetime]:
    """Per rollup width (seconds), the oldest bucket a retention run at `now` keeps (none: kept forever)."""
    days = _rollup_days(settings)
    return {rollups.WIDTHS[w]: now - timedelta(days=d) for w, d in days.items() if d is not None}


# What a class's count counts: "would archive 2017 older than …" read as a year.
NOUNS = {ArchiveFile: "file", Rollup: "rollup row", Quarantine: "message", Prediction: "prediction",
         WorkflowEvent: "audit line"}  # fmt: skip


def _classes(settings: Settings) -> list[tuple[str, float | None, type, ColumnElement, list]]:
    audit_days = max(settings.retain_audit_days or 0.0, settings.audit_floor_days)
    return [
        ("archive", settings.retain_archive_days, ArchiveFile, ArchiveFile.ts_max, []),
        *(
            (f"rollup_{w}", d, Rollup, Rollup.bucket, [Rollup.width_s == rollups.WIDTHS[w]])
            for w, d in _rollup_days(settings).items()
        ),
        ("quarantine", settings.retain_quarantine_days, Quarantine, Quarantine.received_at, []),
        ("predictions", settings.retain_predictions_days, Prediction, Prediction.ts, []),
        ("audit", audit_days if settings.retain_audit_days else None, WorkflowEvent, WorkflowEvent.at, []),
    ]


def run(
    engine: Engine,
    *,
    settings: Settings,
    now: datetime,
    dry_run: bool = False,
    report: progress.Report | None = None,
) -> Plan:
    """Apply (or, dry, count) every data class's retention as of `now`. Each step commits on its own: an
    error carries a note naming the steps done and not done, and a rerun does the rest. `report` is told how
    far the rollup refresh before the archive got (`rollups.refresh`)."""
    plan = Plan(now=now, dry_run=dry_run)
    try:
        _run(engine, settings=settings, plan=plan, report=report)
    except Exception as exc:
        classes = (name for name, days, *_ in _classes(settings) if days is not None)
        names = ["telemetry_hot", *classes, DEAD_ERASURE_EVENTS]
        exc.add_note(plan.stopped(names))
        raise
    return plan


def _run(engine: Engine, *, settings: Settings, plan: Plan, report: progress.Report | None) -> None:
    now, dry_run = plan.now, plan.dry_run
    if not dry_run:  # put back from before an erasure: nothing runs until it is applied again
        erasure_ledger.check(engine, archive.location(settings.archive_url))
    hot_cutoff = now - timedelta(days=settings.hot_days)
    with engine.connect() as conn:
        hot = conn.scalar(select(func.count()).select_from(Telemetry).where(Telemetry.ts < hot_cutoff)) or 0
    step = Step("telemetry_hot", hot_cutoff, hot, "archive")
    plan.steps.append(step)
    if not dry_run:
        partitions.maintain(engine, now=now, lock_timeout_s=settings.partition_lock_timeout_s)
    if not dry_run and hot:
        horizons = rollup_horizons(settings, now)
        rollups.refresh(engine, archive_url=settings.archive_url, horizons=horizons, report=report)
        # What it moved, not what was counted before its lock: another run may have moved them meanwhile.
        moved = archive.run(
            engine,
            url=settings.archive_url,
            before=hot_cutoff,
            lock_timeout_s=settings.partition_lock_timeout_s,
        )
        step.count = moved.rows
        notes = []
        if moved.orphans_removed:
            notes.append(
                f"removed {display.count(moved.orphans_removed, 'file')} a killed run left unregistered"
            )
        if moved.partitions_busy:
            notes.append(_busy_note(moved.partitions_busy, settings.partition_lock_timeout_s))
        step.note = "; ".join(notes)
    plan.done.append("telemetry_hot")
    # Each class is counted, then deleted: on SQLite that transaction must hold the write lock from BEGIN.
    deleter = engine if dry_run else for_writing(engine)
    for name, days, table, column, extra in _classes(settings):
        if days is None:
            continue
        cutoff = now - timedelta(days=days)
        # Archive files on the archive lock: another run (or an erasure) counted and deleted the same files.
        held = archive.exclusive(engine, wait=True) if table is ArchiveFile and not dry_run else nullcontext()
        with held:
            if table is ArchiveFile and not dry_run:  # a copy of this database registers the same files
                archive_store.checked(engine, archive.location(settings.archive_url))
            paths = _delete(deleter, plan, name, cutoff, table, [column < cutoff, *extra], dry_run)
            # Files go after the commit; those a run killed in between left are unregistered, and go now.
            where_files = archive.location(settings.archive_url)
            for path in paths:
                if where_files.fs.exists(where_files.path(path)):
                    where_files.fs.rm(where_files.path(path))
            if table is ArchiveFile and not dry_run:
                archive.remove_expired_orphans(engine, where_files, before=cutoff)
                archive_legacy.remove_expired(engine, where_files, before=cutoff)
        plan.done.append(name)
    cutoff = now - timedelta(days=erasure_notices.KEEP_DEAD_DAYS)
    with deleter.begin() as conn:
        dropped = erasure_notices.drop_dead(conn, before=cutoff, at=now, dry_run=dry_run)
    plan.steps.append(Step(DEAD_ERASURE_EVENTS, cutoff, dropped, "drop the account ids of", "announcement"))
    plan.done.append(DEAD_ERASURE_EVENTS)


def _busy_note(names: list[str], lock_timeout_s: float) -> str:
    """The weeks another transaction held: their rows moved by key, their partitions left to a later run."""
    return (
        f"{', '.join(names)} held by another transaction past {lock_timeout_s:g} s: rows moved by key, "
        "the partition left for a later run"
    )


def _delete(
    deleter: Engine, plan: Plan, name: str, cutoff: datetime, table: type, where: list, dry_run: bool
) -> list[str]:
    """Count (and unless dry, delete) one class's rows in one transaction; the archive paths deleted.

    The step reports the rows the DELETE removed: another run at once counted the same rows before its commit
    (PostgreSQL), and its DELETE, which waited for it, finds them gone."""
    with deleter.begin() as conn:
        count = conn.scalar(select(func.count()).select_from(table).where(*where)) or 0
        step = Step(name, cutoff, count, "delete", NOUNS[table])
        plan.steps.append(step)
        if dry_run or not count:
            return []
        paths = list(conn.scalars(select(ArchiveFile.path).where(*where))) if table is ArchiveFile else []
        allowed = audit_maintenance.allowed(conn, "retention") if table is WorkflowEvent else nullcontext()
        with allowed:
            step.count = conn.execute(delete(table).where(*where)).rowcount
    return paths
