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
