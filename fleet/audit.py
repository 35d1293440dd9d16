"""The audit trail: who did what and when, with the values before and after; rows are only ever added."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from fleet import display
from fleet.tables import WorkflowEvent, utcnow


class Actor(Protocol):
    """Who acts: an API principal (a user) or an `Operator` without a user row."""

    @property
    def user_id(self) -> int | None: ...

    @property
    def name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Operator:
    """Someone acting outside the API: a person at the command line, the demo, a simulator."""

    name: str
    user_id: int | None = None


def operator(tool: str = "cli") -> Operator:
    """The person running this command, as the audit trail names them (`cli:alice`)."""
    try:
        user = getpass.getuser()
    except OSError:  # no user name in the environment (e.g. a container without /etc/passwd entry)
        user = "unknown"
    return Operator(f"{tool}:{user}")


def as_actor(by: Actor | str) -> Actor:
    """The actor itself, or an `Operator` for a caller that names it only."""
    return Operator(by) if isinstance(by, str) else by


def entry(
    subject: str,
    subject_id: int | None,
    action: str,
    by: Actor | None,
    data: dict | None = None,
    at: datetime | None = None,
    *,
    before: dict | None = None,
    after: dict | None = None,
) -> dict:
    """The column values of one audit row (no actor: the system did it)."""
    return {
        "subject": subject,
        "subject_id": subject_id,
        "action": action,
        "actor_id": by.user_id if by is not None else None,
        "actor": by.name if by is not None else display.SYSTEM_ACTOR,
        "at": at or utcnow(),
        "data": data or {},
        "before": before,
        "after": after,
    }


def record(sess: Session, *args: Any, **kwargs: Any) -> None:
    """Add the row `entry(*args, **kwargs)` in the caller's transaction: it commits or rolls back with it."""
    # No code path updates or deletes an audit row, and the database refuses both (migration 0009).
    sess.add(WorkflowEvent(**entry(*args, **kwargs)))
