"""The console says where an approved offer goes: to the CRM, or nowhere while no destination is set."""

from __future__ import annotations

import pytest

from api.app import create_app
from tests.api.support import build_world
from tests.console.client import ConsoleClient, flash, sign_in


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"webhook_url": "http://127.0.0.1:9/crm"}, "it goes to the CRM"),
        (
            {},
            "approved. No CRM destination is configured (SERVICECAST_WEBHOOK_URL, or SERVICECAST_SMTP_URL"
            " with SERVICECAST_MAIL_TO): nothing was queued for the CRM and this approval is never sent.",
        ),
    ],
)
def test_the_approval_message_says_whether_the_offer_goes_anywhere(world_url, settings, said) -> None:
    world = build_world(world_url, **settings)
    offer_id = world.offers["acme"][0]
    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "am-acme")
        page = f"/offers/{offer_id}"
        shown = client.post(f"{page}/approve", data={}, headers={"referer": f"http://testserver{page}"})
    assert said in flash(shown.text)
