"""Quarantine listing and replay: re-ingest held messages after the cause was fixed."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, update

from fleet import telemetry
from fleet.tables import Quarantine, utcnow
from ingest.contract import DEFAULT_LIMITS, Limits
from ingest.pipeline import Pipeline
from ingest.schemas import Rejection
from ingest.sparkplug.decode import REASON_PREFIX as SPARKPLUG

REPLAY_PAGE = 500


@dataclass
class ReplayReport:
    """What a replay did."""

    examined: int = 0
    stored: int = 0
    duplicates: int = 0
    not_replayable: int = 0
    sparkplug: int = 0
    still_quarantined: dict[str, int] = field(default_factory=dict)


def replay(
    *,
    engine: Engine,
    reason: str | None = None,
    auto_register: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    page_size: int = REPLAY_PAGE,
) -> ReplayReport:
    """Run quarantined messages through the ingest pipeline again, a page at a time; safe to repeat.

    Rows that keep only a prefix of their payload (`original_size` set) cannot be replayed; they are
    counted in `not_replayable` and stay as they are. Rows the Sparkplug host quarantined hold protobuf,
    not JSON, and need the node's birth to be read: they are counted in `sparkplug` and stay as they are.
    """
    pipeline = Pipeline(engine=engine, auto_register=auto_register, limits=limits)
    report = ReplayReport()
    for page in telemetry.quarantine_pages(engine, reason=reason, page_size=page_size):
        report.examined += len(page)
        sparkplug = [row for row in page if row.reason.startswith(SPARKPLUG)]
        chunk = [row for row in page if row.original_size is None and not row.reason.startswith(SPARKPLUG)]
        report.sparkplug += len(sparkplug)
        report.not_replayable += len(page) - len(chunk) - len(sparkplug)
        if not chunk:
            continue
        outcome, results = pipeline.store([(r.topic, r.payload, r.received_at.timestamp()) for r in chunk])
        report.stored += outcome.stored
        report.duplicates += outcome.duplicates
        done = [
            row.id for row, result in zip(chunk, results, strict=True) if not isinstance(result, Rejection)
        ]
        with engine.begin() as conn:
            telemetry.mark_replayed(conn, ids=done, at=utcnow())
            for row, result in zip(chunk, results, strict=True):
                if isinstance(result, Rejection):
                    report.still_quarantined[result.reason] = (
                        report.still_quarantined.get(result.reason, 0) + 1
                    )
                    if (result.reason, result.detail) != (row.reason, row.detail):
                        stmt = update(Quarantine).where(Quarantine.id == row.id)
                        conn.execute(stmt.values(reason=result.reason, detail=result.detail))
    return report
