"""The notifications form offers an account manager only accounts whose alerts he may read, and says why
it refuses another."""

from __future__ import annotations

from api.app import API_PREFIX
from tests.api.support import World
from tests.console.client import ConsoleClient, sign_in

API = f"{API_PREFIX}/notifications/subscriptions"


def test_the_form_refuses_an_account_without_offers_with_the_reason(
    client: ConsoleClient, world: World
) -> None:
    globex = world.customers["globex"]
    with world.client() as api:
        assert (
            api.delete(
                f"{API_PREFIX}/customers/{globex}/grants/offers", headers=world.headers("admin")
            ).status_code
            == 200
        )
    sign_in(client, world, "am-globex")
    assert f'<option value="{globex}"' not in client.get("/notifications").text
    form = {"customer_id": str(globex), "channel": "email", "address": "am@example.com"}
    response = client.post("/notifications", data=form)
    assert response.status_code == 422
    assert (
        f'id="customer_id-error">customer {globex} has not granted &#39;offers&#39;: its alerts carry risk'
        in response.text
    )
    with world.client() as api:
        assert api.get(API, headers=world.headers("am-globex")).json() == []


def test_a_subscription_of_an_account_that_withdrew_offers_is_listed_as_suspended(
    client: ConsoleClient, world: World
) -> None:
    globex = world.customers["globex"]
    body = {"customer_id": globex, "channel": "email", "address": "am@example.com"}
    with world.client() as api:
        assert api.post(API, json=body, headers=world.headers("am-globex")).status_code == 201
        grant = f"{API_PREFIX}/customers/{globex}/grants/offers"
        assert api.delete(grant, headers=world.headers("admin")).status_code == 200
    sign_in(client, world, "am-globex")
    assert (
        f'data-k="suspended">suspended: customer {globex} has withdrawn &#39;offers&#39;: its alerts carry '
        "risk and reach an account manager only with that grant; notifications resume when it grants "
        "&#39;offers&#39; again</span>" in client.get("/notifications").text
    )
