"""Console requests a hostile or careless user sends: each gets a page that names the problem, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.app import create_app
from tests.api.support import World
from tests.console.client import ConsoleClient, sign_in


@pytest.fixture
def client(world: World) -> Iterator[ConsoleClient]:
    """A signed-in admin's client that sees a server error as the 500 a browser gets."""
    with ConsoleClient(create_app(world.settings), raise_server_exceptions=False) as client:
        sign_in(client, world, "admin")
        yield client


@pytest.mark.parametrize("page", ["/ledger", "/ledger.csv", "/ledger/{acme}"])
@pytest.mark.parametrize("period", ["start=9999-12-01&end=9999-12-31", "start=9999-11-01&end=9999-12-05"])
def test_a_ledger_period_ending_in_the_last_month_of_the_calendar_is_refused(
    client: ConsoleClient, world: World, page: str, period: str
) -> None:
    response = client.get(page.format(acme=world.customers["acme"]) + "?" + period)
    assert response.status_code == 400, response.text[:300]
    assert "a period must end by 9999-11-30" in response.text
    last = client.get(page.format(acme=world.customers["acme"]) + "?start=9999-11-01&end=9999-11-30")
    assert last.status_code == 200
