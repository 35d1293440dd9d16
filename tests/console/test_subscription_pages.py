"""The notifications page on SQLite and PostgreSQL: subscriptions made or deleted in the console are the
API's and the reverse; nobody deletes another's; an admin sees and manages all; forms need the CSRF token."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.support import World
from tests.console.client import ConsoleClient, flash, sign_in
from tests.sales.test_notification_sites import globex_site

API = "/api/v1/notifications/subscriptions"


@pytest.fixture
def api(world: World) -> Iterator[TestClient]:
    with world.client() as api:
        yield api


def rows(html: str) -> dict[int, str]:
    """The subscriptions table's rows by id, as text."""
    found = re.findall(r'<tr data-subscription="(\d+)">(.*?)</tr>', html, re.S)
    return {int(i): re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip() for i, body in found}


def test_made_in_the_console_it_is_the_apis_and_deleted_through_the_api_it_is_gone(
    client: ConsoleClient, world: World, api: TestClient
) -> None:
    sign_in(client, world, "tech")
    assert 'href="/notifications"' in client.get("/alerts").text
    form = {"customer_id": str(world.customers["acme"]), "min_severity": "high", "channel": "email"}
    response = client.post("/notifications", data=form | {"address": " tech@example.com "})
    assert flash(response.text) == (
        "Subscribed: high alerts and up, by email to tech@example.com. E-mail is not configured "
        "(SERVICECAST_SMTP_URL is unset): nothing is sent by e-mail until the admin sets it."
    )
    assert 'id="email-unsent"' in response.text  # the page says it for as long as it is so
    listed = api.get(API, headers=world.headers("tech")).json()
    assert [
        (s["customer_id"], s["site_id"], s["min_severity"], s["channel"], s["address"]) for s in listed
    ] == [(world.customers["acme"], None, "high", "email", "tech@example.com")]
    sub_id = listed[0]["id"]
    assert "acme" in rows(response.text)[sub_id] and "tech@example.com" in rows(response.text)[sub_id]
    assert api.delete(f"{API}/{sub_id}", headers=world.headers("tech")).status_code == 204
    assert rows(client.get("/notifications").text) == {}


def test_made_through_the_api_it_is_shown_and_deleted_in_the_console_once_confirmed(
    client: ConsoleClient, world: World, api: TestClient
) -> None:
    body = {"channel": "webhook", "address": "https://hooks.example.com/T1", "min_severity": "critical"}
    sub_id = api.post(API, json=body, headers=world.headers("tech")).json()["id"]
    sign_in(client, world, "tech")
    assert "https://hooks.example.com/***" in rows(client.get("/notifications").text)[sub_id]
    asked = client.post(f"/notifications/{sub_id}/delete")
    assert "Stop notifications to https://hooks.example.com/***?" in asked.text
    assert len(api.get(API, headers=world.headers("tech")).json()) == 1  # not before it is confirmed
    done = client.post(f"/notifications/{sub_id}/delete", data={"confirmed": "yes"})
    assert (
        flash(done.text)
        == f"Subscription {sub_id} deleted: no more notifications to https://hooks.example.com/***."
    )
    assert api.get(API, headers=world.headers("tech")).json() == []


def test_nobody_deletes_anothers_subscription_but_an_admin_sees_and_deletes_all(
    client: ConsoleClient, world: World, api: TestClient
) -> None:
    body = {"channel": "email", "address": "tech@example.com"}
    sub_id = api.post(API, json=body, headers=world.headers("tech")).json()["id"]
    sign_in(client, world, "am-acme")
    assert rows(client.get("/notifications").text) == {}
    for data in ({}, {"confirmed": "yes"}):
        assert client.post(f"/notifications/{sub_id}/delete", data=data).status_code == 404
    assert [s["id"] for s in api.get(API, headers=world.headers("tech")).json()] == [sub_id]

    sign_in(client, world, "admin")
    shown = rows(client.get("/notifications").text)
    assert shown[sub_id].startswith("tech ")  # the person it belongs to
    client.post(f"/notifications/{sub_id}/delete", data={"confirmed": "yes"})
    assert api.get(API, headers=world.headers("tech")).json() == []


def test_a_bad_address_or_a_customer_out_of_sight_subscribes_nobody(
    client: ConsoleClient, world: World, api: TestClient
) -> None:
    sign_in(client, world, "am-acme")
    page = client.get("/notifications").text
    assert "every customer</option>" not in page  # an account manager names one of its accounts
    assert f'value="{world.customers["globex"]}"' not in page
    acme = str(world.customers["acme"])
    response = client.post(
        "/notifications", data={"customer_id": acme, "channel": "webhook", "address": "ftp://x"}
    )
    assert response.status_code == 422
    assert 'id="address-error">The incoming webhook&#39;s address, starting with https://' in response.text
    assert 'value="ftp://x"' in response.text  # kept for correcting
    foreign = {"customer_id": str(world.customers["globex"]), "channel": "email", "address": "am@example.com"}
    assert client.post("/notifications", data=foreign).status_code == 404
    assert api.get(API, headers=world.headers("am-acme")).json() == []


def test_subscription_forms_without_the_session_csrf_token_are_refused(
    client: ConsoleClient, world: World, api: TestClient
) -> None:
    sign_in(client, world, "tech")
    form = {"channel": "email", "address": "tech@example.com", "csrf_token": ""}
    assert client.post("/notifications", data=form).status_code == 403
    assert api.get(API, headers=world.headers("tech")).json() == []
    sub_id = api.post(
        API, json={"channel": "email", "address": "t@example.com"}, headers=world.headers("tech")
    )
    forged = {"confirmed": "yes", "csrf_token": "forged"}
    assert client.post(f"/notifications/{sub_id.json()['id']}/delete", data=forged).status_code == 403
    assert len(api.get(API, headers=world.headers("tech")).json()) == 1


def test_a_webhook_on_the_local_network_is_refused_in_the_form_with_the_reason(
    client: ConsoleClient, world: World, api: TestClient
) -> None:
    sign_in(client, world, "tech")
    form = {"customer_id": str(world.customers["acme"]), "channel": "webhook"}
    response = client.post("/notifications", data=form | {"address": "http://169.254.169.254/latest"})
    assert response.status_code == 422
    assert 'id="address-error">169.254.169.254 is a link-local address, not allowed by' in response.text
    assert api.get(API, headers=world.headers("tech")).json() == []


def test_a_site_not_of_the_customer_chosen_is_refused_at_the_site(
    client: ConsoleClient, world: World, api: TestClient
) -> None:
    site_id = globex_site(world)
    sign_in(client, world, "tech")
    acme = world.customers["acme"]
    form = {"customer_id": str(acme), "site_id": str(site_id), "channel": "email", "address": "t@example.com"}
    response = client.post("/notifications", data=form)
    assert response.status_code == 422
    assert f'id="site_id-error">site {site_id} is not a site of customer {acme}</span>' in response.text
    assert api.get(API, headers=world.headers("tech")).json() == []


def test_a_webhook_url_is_listed_by_its_host_never_with_the_secret_it_carries(
    client: ConsoleClient, world: World, api: TestClient
) -> None:
    """The incoming webhook's path is its credential: pages and API answers name the host and route only."""
    secret = "T0SECRETA/B0SECRETB/XXXXslackSECRET"
    shown = "https://hooks.slack.com/services/***"
    sign_in(client, world, "tech")
    made = client.post(
        "/notifications", data={"channel": "webhook", "address": f"https://hooks.slack.com/services/{secret}"}
    )
    assert flash(made.text) == f"Subscribed: critical alerts and up, by webhook to {shown}."
    body = {"channel": "webhook", "address": "https://crm.example.com/hook?token=tok-SECRET-1"}
    answered = api.post(API, json=body, headers=world.headers("tech")).json()
    assert answered["address"] == "https://crm.example.com/***?token=***"
    page = client.get("/notifications").text
    listed = {role: api.get(API, headers=world.headers(role)).json() for role in ("tech", "admin")}
    assert (
        [s["address"] for s in listed["tech"]]
        == [shown, answered["address"]]
        == [s["address"] for s in listed["admin"]]
    )
    sub_id = listed["tech"][0]["id"]
    assert shown in rows(page)[sub_id]
    asked = client.post(f"/notifications/{sub_id}/delete")
    assert f"Stop notifications to {shown}?" in asked.text
    done = client.post(f"/notifications/{sub_id}/delete", data={"confirmed": "yes"})
    assert flash(done.text) == f"Subscription {sub_id} deleted: no more notifications to {shown}."
    for text in (made.text, page, str(listed), asked.text, done.text):
        assert "SECRET" not in text
