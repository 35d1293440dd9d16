"""Console requests a hostile or careless user sends: each gets a page that names the problem, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from api.app import create_app
from fleet.db import session
from fleet.tables import User, WorkflowEvent
from tests.api.support import World
from tests.console.client import ConsoleClient, flash, heading, sign_in


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


def test_a_nul_character_in_a_form_or_an_address_is_named_on_the_page_and_changes_nothing(
    client: ConsoleClient, world: World
) -> None:
    before = _audit_rows(world)
    added = client.post("/admin/users", data={"name": "eve\x00", "role": "admin"}, headers=ADMIN_PAGE)
    assert (added.status_code, added.url.path) == (200, "/admin")
    assert flash(added.text) == "name: a NUL character is not allowed in text"
    revoked = client.post("/admin/users/tech%00/revoke", data={"confirmed": "yes"}, headers=ADMIN_PAGE)
    assert flash(revoked.text) == "a NUL character is not allowed in text"
    fleet = client.get("/fleet?type=pump%00")
    assert fleet.status_code == 400 and "type: a NUL character is not allowed in text" in fleet.text
    client.cookies.clear()
    signed = client.post("/login", data={"api_key": world.tokens["tech"] + "\x00"})
    assert (signed.status_code, signed.url.path) == (200, "/login")
    assert flash(signed.text) == "api key: a NUL character is not allowed in text"
    with session(world.engine) as sess:
        assert sess.scalar(select(User).where(User.name.like("eve%"))) is None
    assert _audit_rows(world) == before


ADMIN_PAGE = {"Referer": "http://testserver/admin"}


def _audit_rows(world: World) -> int:
    with session(world.engine) as sess:
        return sess.scalar(select(func.count()).select_from(WorkflowEvent))


def test_a_form_field_too_large_to_parse_is_a_page_that_says_so_not_a_not_found(
    client: ConsoleClient, world: World
) -> None:
    offer = world.offers["acme"][0]
    response = client.post(f"/offers/{offer}/reject", data={"reason": "x" * 2_000_000})
    assert response.status_code == 400
    assert heading(response.text) == "That did not work"
    assert "Field exceeded maximum size" in response.text
