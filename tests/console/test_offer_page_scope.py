"""An offer's page shows its alert only to who may read that alert."""

from __future__ import annotations

from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import Offer
from tests.api.support import World
from tests.console.client import ConsoleClient, sign_in


def test_the_offer_page_names_no_alert_the_account_manager_may_not_read(
    client: ConsoleClient, world: World
) -> None:
    offer = world.offers["globex"][0]
    with session(world.engine) as sess:
        alert = sess.get(Offer, offer).alert_id
    assert alert is not None
    sign_in(client, world, "am-globex")
    assert f'href="/alerts/{alert}"' in client.get(f"/offers/{offer}").text
    with world.client() as api:
        grant = f"{API_PREFIX}/customers/{world.customers['globex']}/grants/offers"
        assert api.delete(grant, headers=world.headers("admin")).status_code == 200
    assert client.get(f"/alerts/{alert}").status_code == 404
    page = client.get(f"/offers/{offer}")
    assert page.status_code == 200  # the offer stays readable as it was made
    assert f"/alerts/{alert}" not in page.text and "Alert " not in page.text
