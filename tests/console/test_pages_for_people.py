"""What the console's second audit found on the demo's pages: frames, names and words a person knows."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.support import World
from tests.console.client import sign_in, visible

HTML = {"accept": "text/html"}


def test_an_unknown_address_keeps_the_menu_and_the_signed_in_name(client: TestClient, world: World) -> None:
    sign_in(client, world, "tech")
    answer = client.get("/no-such-page", headers=HTML)
    text = visible(answer.text)
    assert answer.status_code == 404 and "Page not found" in text
    assert "tech · field service" in text and "Sign out" in text
    assert 'href="/alerts"' in answer.text and 'href="/fleet"' in answer.text


def test_an_unknown_address_offers_a_signed_out_visitor_the_sign_in_page(client: TestClient) -> None:
    answer = client.get("/no-such-page", headers=HTML)
    assert answer.status_code == 404 and "Page not found" in visible(answer.text)
    assert "Sign out" not in answer.text and 'href="/login"' in answer.text
