"""The audit trail of alerts and offers, and the state checks every transition makes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from api.auth import Principal
from api.errors import Conflict
from fleet.tables import WorkflowEvent


def log_event(
    sess: Session,
    subject: str,
    subject_id: int,
    action: str,
    by: Principal | None,
    data: dict,
    at: datetime | None = None,
) -> None:
    """Record who did what to an alert or offer (no actor for the system)."""
    event = WorkflowEvent(
        subject=subject, subject_id=subject_id, action=action, actor_id=by.user_id if by else None, data=data
    )
    if at is not None:
        event.at = at
    sess.add(event)


def require_state(subject: str, obj, states: tuple[str, ...], action: str) -> None:  # noqa: ANN001
    """409 unless the alert or offer is in one of `states`."""
    if obj.status not in states:
        raise Conflict(f"cannot {action} {subject} {obj.id}: it is {obj.status}")
