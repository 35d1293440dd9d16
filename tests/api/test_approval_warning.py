"""An approval made by an API with no CRM destination says so: it is approved and audited, and never sent."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import OutboxMessage, WorkflowEvent
from tests.api.support import build_world

WEBHOOK = {"webhook_url": "http://127.0.0.1:9/hook"}
EMAIL = {"smtp_url": "smtp://127.0.0.1:9", "mail_to": "crm-inbox@oem.example"}


@pytest.mark.parametrize(
    ("settings", "queued"),
    [({}, 0), ({"smtp_url": "smtp://127.0.0.1:9"}, 0), (WEBHOOK, 1), (EMAIL, 1), ({**WEBHOOK, **EMAIL}, 2)],
    ids=["none", "smtp-without-recipient", "webhook", "email", "both"],
)
def test_the_approve_answer_warns_exactly_when_nothing_is_queued(world_url, settings, queued) -> None:
    world = build_world(world_url, **settings)
    offer_id = world.offers["acme"][0]
    with world.client() as client:
        approved = client.post(
            f"{API_PREFIX}/offers/{offer_id}/approve", json={}, headers=world.headers("am-acme")
        )
        again = client.get(f"{API_PREFIX}/offers/{offer_id}", headers=world.headers("am-acme"))
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "approved" and again.json()["status"] == "approved"
    with session(world.engine) as sess:
        rows = sess.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.offer_id == offer_id)
        )
        audited = sess.scalars(
            select(WorkflowEvent.action).where(
                WorkflowEvent.subject == "offer", WorkflowEvent.subject_id == offer_id
            )
        ).all()
    assert rows == queued and "approved" in audited
    if queued:
        assert body["warning"] is None
    else:
        warning = body["warning"]
        assert "never sent" in warning and "No CRM destination is configured" in warning
        assert all(
            name in warning
            for name in ("SERVICECAST_WEBHOOK_URL", "SERVICECAST_SMTP_URL", "SERVICECAST_MAIL_TO")
        )
    assert (
        "warning" not in again.json()
    )  # reading the offer later tells nothing about this process's settings
