"""Inbound CRM outcomes over real HTTP: signed (Standard Webhooks), fresh, and applied once per webhook id."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from api.app import API_PREFIX, create_app
from api.delivery import signed_headers
from fleet.db import session
from fleet.tables import CrmOutcome, Offer, utcnow
from tests.api.routing_support import SECRET
from tests.api.support import NOW, World, build_world, client_of, served

OTHER_SECRET = "whsec_" + "b3RoZXItc2VjcmV0LW9mLTMyLWJ5dGVzLWxvbmchIQ=="
URL = f"{API_PREFIX}/crm/outcomes"
DATE = f"{NOW + timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}"  # after the offers were made, not in the future


def _sent_offer_world(database_url: str) -> World:
    """A world whose first offer of acme is sent; inbound webhooks on."""
    world = build_world(database_url, crm_inbound_secret=SECRET, crm_replay_window_s=300)
    with session(world.engine) as sess:  # the account manager approved it and the router sent it
        offer = sess.get(Offer, world.offers["acme"][0])
        offer.status = "sent"
    return world


@pytest.fixture
def world(database_url):
    return _sent_offer_world(database_url)


@pytest.fixture(scope="module")
def unchanged_world(module_database_url: str) -> World:
    """The same world, built once a module for its requests that are refused and change nothing."""
    return _sent_offer_world(module_database_url)


@pytest.fixture(scope="module")
def unchanged_url(unchanged_world: World) -> Iterator[str]:
    """The unchanged world's app, served for the whole module."""
    with served(create_app(unchanged_world.settings)) as base:
        yield base


def _post(
    client: httpx.Client, body: dict, *, webhook_id: str, secret: str = SECRET, at: datetime | None = None
):
    text = json.dumps(body)
    headers = signed_headers(secret=secret, event_id=webhook_id, body=text, at=at or utcnow())  # code's clock
    headers["content-type"] = "application/json"
    return client.post(URL, content=text.encode(), headers=headers)


def _state(world, offer_id: int) -> tuple[str, float | None, int]:
    with session(world.engine) as sess:
        offer = sess.get(Offer, offer_id)
        rows = sess.scalar(select(func.count()).select_from(CrmOutcome))
        return offer.status, offer.revenue, rows


def test_bad_signature_401_replay_counted_once_stale_refused(world) -> None:
    offer_id = world.offers["acme"][0]
    won = {"offer_id": offer_id, "outcome": "won", "amount": 1850.5, "date": DATE}
    with served(create_app(world.settings)) as base, client_of(base, timeout=30) as client:
        forged = _post(client, won, webhook_id="msg_forged", secret=OTHER_SECRET)
        assert (forged.status_code, forged.json()["error"]) == (401, "bad_signature")
        unsigned = client.post(URL, json=won)
        assert unsigned.status_code == 401
        assert _state(world, offer_id) == ("sent", None, 0)

        stale = _post(client, won, webhook_id="msg_1", at=utcnow() - timedelta(minutes=10))
        assert (stale.status_code, stale.json()["error"]) == (401, "stale_timestamp")
        assert _state(world, offer_id) == ("sent", None, 0)

        first = _post(client, won, webhook_id="msg_1")
        assert first.status_code == 200 and first.json()["applied"] is True
        again = _post(client, won, webhook_id="msg_1")  # the CRM retried: a fresh signature, same id
        assert again.status_code == 200 and again.json()["applied"] is False
    assert _state(world, offer_id) == ("accepted", 1850.5, 1)


def test_a_lost_offer_keeps_its_reason_and_an_unknown_offer_is_404(world) -> None:
    offer_id = world.offers["acme"][0]
    lost = {
        "offer_id": offer_id,
        "outcome": "lost",
        "reason": "budget frozen",
        "date": DATE,
    }
    with served(create_app(world.settings)) as base, client_of(base, timeout=30) as client:
        assert _post(client, lost, webhook_id="msg_2").status_code == 200
        missing = _post(client, {**lost, "offer_id": 999_999}, webhook_id="msg_3")
        assert missing.status_code == 404
    with session(world.engine) as sess:
        offer = sess.get(Offer, offer_id)
        assert (offer.status, offer.outcome_reason) == ("declined", "budget frozen")
