"""The audit trail of every workflow (`log_event`, written by `fleet.audit`), and the state checks."""

from __future__ import annotations

from sqlalchemy.orm import object_session

from api.errors import Conflict
from fleet.audit import record as log_event

__all__ = ["log_event", "require_state"]


def require_state(subject: str, obj, states: tuple[str, ...], action: str) -> None:  # noqa: ANN001
    """409 unless the alert or offer is in one of `states`, read again under its row lock.

    Two requests for one transition (a double click) may both have read the old state: on PostgreSQL the
    second now waits for the first to commit and sees its state (SQLite's writers queue at BEGIN).
    """
    sess = object_session(obj)
    if sess is not None:
        sess.flush()  # a change the caller made is kept, not read over
        sess.refresh(obj, with_for_update=True)
    if obj.status not in states:
        raise Conflict(f"cannot {action} {subject} {obj.id}: it is {obj.status}")
