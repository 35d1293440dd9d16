"""Quarantine listing and replay: re-ingest held messages after the cause was fixed."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, update

from fleet import telemetry
from fleet.tables import Quarantine, utcnow
from ingest.pipeline import Pipeline
from ingest.schemas import Reading, Rejection

REPLAY_CHUNK = 500


@dataclass
class ReplayReport:
    """What a replay did."""

    examined: int = 0
    stored: int = 0
    duplicates: int = 0
    still_quarantined: dict[str, int] = field(default_factory=dict)


def replay(
    *, engine: Engine, reason: str | None = None, auto_register: bool = False, max_bytes: int = 65_536
) -> ReplayReport:
    """Run quarantined messages through the ingest pipeline again; idempotent, so safe to repeat."""
    pipeline = Pipeline(engine=engine, auto_register=auto_register, max_bytes=max_bytes)
    report = ReplayReport()
    rows = telemetry.pending_quarantine(engine, reason=reason)
    for start in range(0, len(rows), REPLAY_CHUNK):
        chunk = rows[start : start + REPLAY_CHUNK]
        outcome, results = pipeline.store([(r.topic, r.payload, r.received_at.timestamp()) for r in chunk])
        report.examined += len(chunk)
        report.stored += outcome.stored
        report.duplicates += outcome.duplicates
        done = [row.id for row, result in zip(chunk, results, strict=True) if isinstance(result, Reading)]
        with engine.begin() as conn:
            telemetry.mark_replayed(conn, done, utcnow())
            for row, result in zip(chunk, results, strict=True):
                if isinstance(result, Rejection):
                    report.still_quarantined[result.reason] = (
                        report.still_quarantined.get(result.reason, 0) + 1
                    )
                    if (result.reason, result.detail) != (row.reason, row.detail):
                        stmt = update(Quarantine).where(Quarantine.id == row.id)
                        conn.execute(stmt.values(reason=result.reason, detail=result.detail))
    return report
