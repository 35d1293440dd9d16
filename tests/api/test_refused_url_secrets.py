"""A request the API refuses (422) says what is wrong with a URL it carries without repeating the URL's
secret: a password, a webhook's path past its route, a token in its query, wherever the URL stands."""

from __future__ import annotations

import pytest

from api.app import API_PREFIX
from tests.api.support import World, build_world

SUBSCRIBE = f"{API_PREFIX}/notifications/subscriptions"


@pytest.fixture
def world(database_url: str) -> World:
    return build_world(database_url)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        # httpx ends the authority at the / inside the password and names the rest of it as a bad port
        (
            {"channel": "webhook", "address": "https://crm:pw-SECRET/x@chat.example/hook"},
            "body.webhook.address: Value error, not a URL: Invalid port: '***'",
        ),
        # a URL as an unknown field's name (the model forbids extra fields)
        (
            {"channel": "webhook", "address": "https://chat.example/h", "https://chat.example/T/x-SECRET": 1},
            "body.webhook.https://chat.example/T/***: Extra inputs are not permitted",
        ),
    ],
)
def test_a_refused_subscription_does_not_repeat_its_urls_secret(world: World, body: dict, said: str) -> None:
    with world.client() as client:
        answer = client.post(SUBSCRIBE, json=body, headers=world.headers("tech"))

    assert answer.status_code == 422
    assert answer.json() == {"error": "invalid_request", "detail": said}
