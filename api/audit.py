"""The audit trail of every workflow (`log_event`, written by `fleet.audit`), and the state checks."""

from __future__ import annotations

from api.errors import Conflict
from fleet.audit import record as log_event

__all__ = ["log_event", "require_state"]


def require_state(subject: str, obj, states: tuple[str, ...], action: str) -> None:  # noqa: ANN001
    """409 unless the alert or offer is in one of `states`."""
    if obj.status not in states:
        raise Conflict(f"cannot {action} {subject} {obj.id}: it is {obj.status}")
