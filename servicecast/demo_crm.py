"""The demo's CRM: a webhook endpoint inside the demo's own app, whose received events an admin can see.

`servicecast demo` points SERVICECAST_WEBHOOK_URL here (unless you set one) and runs the router, so
approve → sent → outcome works without any outside service. Events are kept in memory, for the demo only.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections import deque

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import SecretStr
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from api.console.login import Viewer, require
from api.console.render import PageRoute, page
from fleet.settings import Settings

PATH = "/demo/crm"
KEPT = 200


def settings_with_receiver(settings: Settings) -> Settings:
    """The settings with the webhook pointed at this receiver and a fresh secret, unless a CRM is set."""
    if settings.webhook_url:
        return settings
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    url = f"http://{settings.api_host}:{settings.api_port}{PATH}"
    return settings.model_copy(update={"webhook_url": url, "webhook_secret": SecretStr(secret)})


def install(app: FastAPI, settings: Settings) -> None:
    """Add the receiver and its inbox page to the demo's app."""
    app.state.crm_inbox = deque(maxlen=KEPT)
    app.state.crm_webhook = Webhook(settings.webhook_secret.get_secret_value())
    app.include_router(router)


async def receive(request: Request) -> Response:
    """Take a signed event as a CRM would: 401 unless the Standard Webhooks signature holds."""
    body = await request.body()
    try:
        request.app.state.crm_webhook.verify(body, dict(request.headers))
    except WebhookVerificationError:
        return Response(status_code=401)
    request.app.state.crm_inbox.appendleft(json.loads(body))
    return Response(status_code=204)


router = APIRouter(route_class=PageRoute, include_in_schema=False)
router.add_api_route(PATH, receive, methods=["POST"])


@router.get("/admin/crm", response_class=HTMLResponse)
def inbox(request: Request, who: Viewer):
    """What the demo's CRM received, newest first."""
    require(who, "admin")
    return page(request, "crm_inbox.html", {"who": who, "events": list(request.app.state.crm_inbox)})
