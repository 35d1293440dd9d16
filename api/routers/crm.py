"""The CRM's way back in: signed offer outcomes (won/lost) by webhook."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute

from api import crm_inbound
from api.deps import SessionDep, SettingsDep
from api.errors import Unauthorized
from fleet.tables import utcnow


class _BodyFirst(APIRoute):
    """A route whose body is read before the app's dependencies, so that the signed bytes stay readable."""

    # With a form content type (what `curl -d` says) `refuse_nul` parsed the stream away first: a 500.

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, with the body read (and kept on the request) first."""
        handle = super().get_route_handler()

        async def body_first(request: Request) -> Response:
            await request.body()
            return await handle(request)

        return body_first


router = APIRouter(prefix="/crm", tags=["crm"], route_class=_BodyFirst)


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
        headers=crm_inbound.signature_headers(request.headers.items()),
        now=now,
        window_s=settings.crm_replay_window_s,
    )
    row, applied = crm_inbound.apply(
        sess, webhook_id=webhook_id, body=body, now=now, window_s=settings.crm_replay_window_s
    )
    return {"webhook_id": webhook_id, "offer_id": row.offer_id, "outcome": row.outcome, "applied": applied}
