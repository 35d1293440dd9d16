"""Value types that cross the ingest pipeline: envelope in, reading or rejection out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fleet.contract import QUARANTINE_REASONS


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message as it arrived from the broker, before any parsing."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    received_at: float
    generation: int = 0


@dataclass(frozen=True, slots=True)
class Reading:
    """A message that meets contract v1."""

    tenant: str
    machine: str
    seq: int
    ts: datetime
    readings: dict[str, float | None]
    fw: str | None = None
    extra: dict | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """An alarm or error code that meets the events contract v1."""

    tenant: str
    machine: str
    seq: int
    ts: datetime
    code: str
    severity: str | None = None
    text: str | None = None
    extra: dict | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message cannot be stored; `reason` is a stable code, `detail` says exactly what."""

    reason: str
    detail: str

    def __post_init__(self) -> None:
        if self.reason not in QUARANTINE_REASONS:
            raise ValueError(
                f"unknown quarantine reason {self.reason!r}: add it to contract.QUARANTINE_REASONS"
            )


@dataclass(slots=True)
class Outcome:
    """What one batch did: counts by outcome and quarantine reasons."""

    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    lags: list[float] = field(default_factory=list)
    rebirths: list[tuple[str, str]] = field(default_factory=list)  # Sparkplug (group, edge node) to ask

    def add_reason(self, reason: str) -> None:
        """Count one quarantined message under its reason."""
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
