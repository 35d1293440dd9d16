"""Console pages over HTTP: sign-in, roles, tenancy, and bad form input answered on the page."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import API_PREFIX
from fleet import registry
from fleet.db import session
from fleet.tables import Alert, Offer, OutboxMessage
from tests.api.support import World
from tests.console.client import flash, heading, sign_in


def test_pages_ask_to_sign_in_and_the_cookie_is_http_only_and_same_site(
    client: TestClient, world: World
) -> None:
    response = client.get("/fleet?type=pump", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login?next=/fleet%3Ftype%3Dpump")
    client.cookies.set("servicecast_session", "garbage")
    assert client.get("/alerts", follow_redirects=False).status_code == 401
    refused = client.post("/login", data={"api_key": "sc_abc_garbage"})
    assert refused.status_code == 401 and "unknown, expired or revoked" in refused.text
    client.cookies.clear()
    response = client.post(
        "/login", data={"api_key": world.tokens["tech"], "next": "/fleet?type=pump"}, follow_redirects=False
    )
    assert response.headers["location"] == "/fleet?type=pump"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    page = client.get("/fleet")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    for target in ("//evil.example/", "https://evil.example/", "/login"):
        client.cookies.clear()
        response = client.post(
            "/login", data={"api_key": world.tokens["tech"], "next": target}, follow_redirects=False
        )
        assert response.headers["location"] == "/alerts"  # never off-site


@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        ("tech", "/offers", 403),
        ("tech", "/admin", 403),
        ("am-acme", "/admin", 403),
        ("cust-acme", "/admin", 403),
    ],
)
def test_a_role_without_the_right_gets_a_page_saying_so(
    client: TestClient, world: World, who: str, path: str, status: int
) -> None:
    sign_in(client, world, who)
    response = client.get(path)
    assert response.status_code == status
    assert (
        response.headers["content-type"].startswith("text/html") and heading(response.text) == "Not allowed"
    )


@pytest.mark.parametrize("who", ["am-acme", "cust-acme"])
def test_another_tenants_objects_are_not_found_and_lists_hold_none_of_them(
    client: TestClient, world: World, who: str
) -> None:
    sign_in(client, world, who)
    foreign = {
        f"/machines/{world.machines['globex'][0]}",
        f"/alerts/{world.alerts['globex'][0]}",
        f"/offers/{world.offers['globex'][0]}",
        f"/accounts/{world.customers['globex']}",
    }
    for path in foreign:
        response = client.get(path)
        assert (response.status_code, heading(response.text)) == (404, "Not found"), path
        assert "globex-pump" not in response.text
    for path in ("/fleet", "/alerts?status=active", "/offers?tab=proposed", "/offers?tab=sent", "/accounts"):
        assert "globex" not in client.get(path).text, path


def test_field_service_form_mistakes_come_back_as_messages(client: TestClient, world: World) -> None:
    alert_id = world.alerts["acme"][0]
    sign_in(client, world, "tech")
    page = f"/alerts/{alert_id}"
    headers = {"referer": f"http://testserver{page}"}
    early = client.post(f"{page}/resolve", data={"finding": "confirmed_fault"}, headers=headers)
    assert early.url.path == page and "cannot resolve alert" in flash(early.text)
    assert "Alert" in flash(client.post(f"{page}/ack", headers=headers).text)
    no_text = client.post(f"{page}/resolve", data={"finding": "other", "text": " "}, headers=headers)
    assert "text" in flash(no_text.text) and no_text.status_code == 200
    customer_user = world.users["cust-acme"]
    wrong = client.post(f"{page}/assign", data={"assignee_id": str(customer_user)}, headers=headers)
    assert "not an active field-service user" in flash(wrong.text)
    bad = client.post(f"{page}/resolve", data={"finding": "maybe"}, headers=headers)
    assert bad.status_code == 200 and "finding" in flash(bad.text)
    with session(world.engine) as sess:
        assert sess.get(Alert, alert_id).status == "acknowledged"


def test_approving_edits_the_offer_queues_the_crm_event_and_bad_prices_are_refused(
    client: TestClient, world: World
) -> None:
    offer_id = world.offers["acme"][0]
    sign_in(client, world, "am-acme")
    page = f"/offers/{offer_id}"
    headers = {"referer": f"http://testserver{page}"}
    for price in ("-5", "abc", "1e12"):  # answered on the offer's page, the price sent kept in its field
        refused = client.post(f"{page}/approve", data={"price": price}, headers=headers)
        assert refused.status_code == 422 and flash(refused.text), price
        assert re.search(r'id="price"[^>]*value="([^"]*)"', refused.text).group(1) == price
    approved = client.post(
        f"{page}/approve", data={"price": "999", "title": "Bearing kit, fitted"}, headers=headers
    )
    assert "approved" in flash(approved.text)
    with session(world.engine) as sess:
        offer = sess.get(Offer, offer_id)
        assert (offer.status, offer.price, offer.title) == ("approved", 999.0, "Bearing kit, fitted")
        assert sess.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.offer_id == offer_id)
        )
    again = client.post(f"{page}/approve", data={}, headers=headers)
    assert "cannot approve offer" in flash(again.text)


def test_revoking_consent_in_the_admin_page_withdraws_offers_and_blocks_approval(
    client: TestClient, world: World
) -> None:
    sign_in(client, world, "admin")
    acme = world.customers["acme"]
    asked = client.post(f"/customers/{acme}/grants/offers", data={"action": "revoke"})
    assert "Stop using" in asked.text and "open offers are withdrawn" in asked.text
    with session(world.engine) as sess:
        assert "offers" in registry.purposes_of(sess, acme)  # nothing happens before the confirmation
    page = client.post(f"/customers/{acme}/grants/offers", data={"action": "revoke", "confirmed": "yes"})
    assert flash(page.text) == "acme no longer allows its data to be used for offers; 1 open offer withdrawn."
    sign_in(client, world, "am-acme")
    offer_page = client.get(f"/offers/{world.offers['acme'][0]}").text
    assert "no offer consent" in offer_page and "withdrawn" in offer_page
    assert "Approve and send to CRM" not in offer_page


def test_service_consent_cannot_be_revoked_from_the_console_or_the_api(
    client: TestClient, world: World
) -> None:
    acme = world.customers["acme"]
    answer = client.delete(f"{API_PREFIX}/customers/{acme}/grants/service", headers=world.headers("admin"))
    assert answer.status_code == 409 and "ask for erasure" in answer.json()["detail"]
    sign_in(client, world, "admin")
    page = client.post(
        f"/customers/{acme}/grants/service",
        data={"action": "revoke"},
        headers={"referer": "http://testserver/admin"},
    )
    assert "ask for erasure" in flash(page.text)
    with session(world.engine) as sess:
        assert "service" in registry.purposes_of(sess, acme)


def test_an_admin_adds_a_user_whose_key_is_shown_once_and_works(client: TestClient, world: World) -> None:
    sign_in(client, world, "admin")
    page = client.post("/admin/users", data={"name": "dana", "role": "field_service"})
    key = re.search(r'<code id="new-key">([^<]+)</code>', page.text).group(1)
    assert "dana" in page.text and "API key for dana" in page.text
    assert "new-key" not in client.get("/admin").text
    duplicate = client.post(
        "/admin/users",
        data={"name": "dana", "role": "field_service"},
        headers={"referer": "http://testserver/admin"},
    )
    assert duplicate.status_code == 422  # the form again, the problem beside the name, the name kept
    assert re.search(r'id="name-error">A user named dana exists already', duplicate.text)
    assert 'name="name" maxlength="200" value="dana"' in duplicate.text
    client.cookies.clear()
    assert (
        client.post("/login", data={"api_key": key}, follow_redirects=False).headers["location"] == "/alerts"
    )


def test_a_customer_sees_sent_offers_only(client: TestClient, world: World) -> None:
    sign_in(client, world, "cust-acme")
    offer_id = world.offers["acme"][0]
    assert client.get(f"/offers/{offer_id}").status_code == 404  # still an internal draft
    with session(world.engine) as sess:
        sess.get(Offer, offer_id).status = "sent"
    assert client.get(f"/offers/{offer_id}").status_code == 200
    assert f'data-offer="{offer_id}"' in client.get("/offers?tab=sent").text


def test_the_accounts_page_counts_machines_at_risk_and_open_alerts(client: TestClient, world: World) -> None:
    sign_in(client, world, "am-acme")
    page = client.get("/accounts").text
    row = re.search(r'<tr>\s*<th scope="row"><a href="/accounts/(\d+)">.*?</tr>', page, re.S)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row.group(0), re.S)]
    acme = world.customers["acme"]
    with session(world.engine) as sess:
        open_alerts = sess.scalar(
            select(func.count()).select_from(Alert).where(Alert.customer_id == acme, Alert.status == "open")
        )
    # Three machines; the two with predictions of risk 0.9 and 0.75 are over the alert threshold.
    assert (int(row.group(1)), cells[1:]) == (acme, ["3", "2", str(open_alerts)])
    assert open_alerts >= 1 and "globex" not in page
