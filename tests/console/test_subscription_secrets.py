"""A subscription the console refuses (422) keeps the address in the form for correcting, as the API's 422
does in its detail: host and route readable, the secret it carries (a password, a webhook's path past its
route, a token in its query) masked as *** and never sent back to the page."""

from __future__ import annotations

import re

import pytest

from tests.api.support import World
from tests.console.client import ConsoleClient, sign_in, visible


def _field(html: str) -> tuple[str, str]:
    """The address input's value and the field's error, as a reader sees them."""
    value = re.search(r'<input name="address"[^>]*value="([^"]*)"', html).group(1)
    error = re.search(r'id="address-error">(.*?)</span>', html, re.S).group(1)
    return visible(value).strip(), visible(error).strip()


@pytest.mark.parametrize(
    ("address", "shown", "why"),
    [
        (  # refused by the router's rules: a link-local host
            "http://169.254.169.254/services/T0SECRET/B0SECRET?token=tok-SECRET-2",
            "http://169.254.169.254/services/***?token=***",
            "169.254.169.254 is a link-local address, not allowed by",
        ),
        (  # refused as no URL: httpx reads the password's end as a bad port
            "https://crm:pw-SECRET/x@chat.example/hook",
            "https://crm:***/***",
            "The incoming webhook's address, starting with https://",
        ),
    ],
)
def test_a_refused_webhook_address_comes_back_without_its_secret(
    client: ConsoleClient, world: World, address: str, shown: str, why: str
) -> None:
    sign_in(client, world, "tech")
    form = {"customer_id": str(world.customers["acme"]), "channel": "webhook", "address": address}

    response = client.post("/notifications", data=form)

    assert response.status_code == 422
    assert "SECRET" not in response.text
    value, error = _field(response.text)
    assert value == shown
    assert error.startswith(why), error
    assert error.endswith("Enter the part shown as *** again: a secret is not sent back to the page."), error


def test_a_refused_address_without_a_secret_comes_back_as_it_was(client: ConsoleClient, world: World) -> None:
    sign_in(client, world, "tech")
    form = {"customer_id": str(world.customers["acme"]), "channel": "webhook", "address": "ftp://x"}

    response = client.post("/notifications", data=form)

    assert response.status_code == 422
    assert _field(response.text) == (
        "ftp://x",
        "The incoming webhook's address, starting with https:// (or http://).",
    )
