"""The CRM's way back in: signed offer outcomes (won/lost) by webhook."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from api import crm_inbound
from api.deps import SessionDep, SettingsDep
from api.errors import Unauthorized
from fleet.tables import utcnow

router = APIRouter(prefix="/crm", tags=["crm"])


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


# An outcome is a few hundred bytes (its reason at most 2,000 characters); room for a CRM's extra fields.
# Past it the answer is 413 before more is read: nothing about the sender is checked yet.
MAX_BODY = 256 * 1024


@router.post("/outcomes", max_body_size=MAX_BODY)
def receive_outcome(request: Request, body: RawBody, sess: SessionDep, settings: SettingsDep) -> dict:
    """Apply a signed offer outcome once per `webhook-id`: 401 when unsigned, forged or stale."""
    if settings.crm_inbound_secret is None:
        raise Unauthorized("inbound CRM webhooks are off: set SERVICECAST_CRM_INBOUND_SECRET")
    now = utcnow()
    webhook_id = crm_inbound.verify(
        secret=settings.crm_inbound_secret.get_secret_value(),
        body=body,
        headers={k.lower(): v for k, v in request.headers.items()},
        now=now,
        window_s=settings.crm_replay_window_s,
    )
    row, applied = crm_inbound.apply(
        sess, webhook_id=webhook_id, body=body, now=now, window_s=settings.crm_replay_window_s
    )
    return {"webhook_id": webhook_id, "offer_id": row.offer_id, "outcome": row.outcome, "applied": applied}
