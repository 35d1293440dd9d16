"""Ambiguous, deep or odd JSON bodies and money or dates no offer can have, sent to the sales API over real
HTTP: each is a 4xx naming the problem, never a 500, and nothing is stored."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import httpx
import pytest

from api.app import API_PREFIX, create_app
from api.delivery import signed_headers
from fleet.tables import utcnow
from tests.api.routing_support import SECRET
from tests.api.support import client_of, served
from tests.sales import test_crm_inbound
from tests.sales.test_crm_inbound import DATE, URL, _state

world = test_crm_inbound.world  # a sent offer of acme; inbound webhooks on
unchanged_world, unchanged_url = test_crm_inbound.unchanged_world, test_crm_inbound.unchanged_url
DEEP = b"[" * 100_000 + b"]" * 100_000
MONEY_TEXT = 'must be a number, or decimal text in plain digits (as "1850.50")'


def _signed(
    client: httpx.Client, text: bytes, *, webhook_id: str, kind: str = "application/json"
) -> httpx.Response:
    headers = signed_headers(
        secret=SECRET, event_id=webhook_id, body=text.decode("utf-8", "replace"), at=utcnow()
    )
    return client.post(URL, content=text, headers=headers | {"content-type": kind})


def _outcome(offer_id: int, **fields: object) -> dict:
    return {"offer_id": offer_id, "outcome": "won", "amount": 2100, "date": DATE} | fields


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (
            b'{"offer_id": %d, "outcome": "lost", "outcome": "won", "date": "2026-11-30T10:00:00Z"}',
            "body: duplicate key 'outcome'",
        ),
        (
            b'{"offer_id": %d, "outcome": "won", "amount": NaN, "date": "2026-11-30T10:00:00Z"}',
            "body: NaN is not a JSON number",
        ),
        (
            b'{"offer_id": %d, "outcome": "won", "crm": {"score": -Infinity}, "date": "2026-11-30T10:00Z"}',
            "body: -Infinity is not a JSON number",
        ),
        (
            b'{"offer_id": %d, "outcome": "won", "amount": 1e400, "date": "2026-11-30T10:00:00Z"}',
            "body: 1e400 is out of range",
        ),
        (  # 0.0 as a float: a won amount of nothing
            b'{"offer_id": %d, "outcome": "won", "amount": 1e-400, "date": "2026-11-30T10:00:00Z"}',
            "body: 1e-400 is out of range",
        ),
        (  # Python's int() refuses more than 4,300 digits: a 500
            b'{"offer_id": %d, "outcome": "won", "amount": ' + b"9" * 5000 + b', "date": "2026-11-30"}',
            "body: a whole number of 5000 digits is out of range",
        ),
        (
            b'{"offer_id": %d, "outcome": "lost", "date": "2026-11-30T10:00:00Z", "x": ' + DEEP + b"}",
            "body: nested deeper than 32 levels",
        ),
        (
            '{"offer_id": %d, "outcome": "lost", "reason": "f\xfcr uns zu teuer", "date": "2026"}'.encode(
                "latin-1"
            ),
            "body: not UTF-8",
        ),
    ],
    ids=["duplicate-key", "nan", "infinity", "overflow", "underflow", "long-integer", "deep", "latin-1"],
)
def test_an_ambiguous_or_malformed_crm_body_is_422_and_changes_nothing(
    unchanged_world, unchanged_url, raw: bytes, problem: str
) -> None:
    offer_id = unchanged_world.offers["acme"][0]
    with client_of(unchanged_url, timeout=60) as client:
        body = raw.replace(b"%d", str(offer_id).encode())
        answer = _signed(client, body, webhook_id="msg_odd")
        as_text = _signed(client, body, webhook_id="msg_odd_text", kind="text/plain")  # parsed by the route
    for response in (answer, as_text):
        assert response.status_code == 422, response.text[:300]
        assert response.json()["detail"].startswith(problem), response.json()
    assert _state(unchanged_world, offer_id) == ("sent", None, 0)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"amount": 2100.505}, "cannot record the outcome of offer 1: revenue 2100.505 has more decimals"),
        ({"amount": 1e-300}, "cannot record the outcome of offer 1: revenue 1e-300 has more decimals"),
        ({"amount": -5}, "amount: Input should be greater than or equal to 0"),
        ({"amount": 1e12}, "amount: Input should be less than or equal to 100000000"),
        ({"amount": True}, "amount: Value error, must be a number, not true or false"),
        ({"date": "9000-01-01T00:00:00Z"}, "date: 9000-01-01 00:00:00+00:00 is in the future"),
        ({"date": "2000-01-01T00:00:00Z"}, "date: 2000-01-01 00:00:00+00:00 is before offer 1 was made"),
        ({"amount": "NaN"}, f"amount: Value error, {MONEY_TEXT}"),  # text: JSON's NaN is refused earlier
        ({"amount": "-Infinity"}, f"amount: Value error, {MONEY_TEXT}"),
        ({"currency": "USD"}, "currency: USD is not the currency of offer 1 (EUR)"),
        ({"currency": "eur"}, "currency: String should match pattern"),
    ],
    ids=[
        "three-decimals",
        "tiny",
        "negative",
        "absurd",
        "true",
        "far-future",
        "before-the-offer",
        "nan-text",
        "infinity-text",
        "usd",
        "eur",
    ],
)
def test_an_outcome_no_offer_can_have_is_422_and_changes_nothing(world, fields: dict, problem: str) -> None:
    offer_id = world.offers["acme"][0]
    with served(create_app(world.settings)) as base, client_of(base, timeout=60) as client:
        answer = _signed(client, json.dumps(_outcome(offer_id, **fields)).encode(), webhook_id="msg_money")
        assert answer.status_code == 422, answer.text[:300]
        assert answer.json()["detail"].startswith(problem), answer.json()
        assert _state(world, offer_id) == ("sent", None, 0)
        soon = (utcnow() + timedelta(seconds=60)).isoformat()  # a CRM clock a minute ahead is no future
        fine = _signed(
            client, json.dumps(_outcome(offer_id, amount=2100.5, date=soon)).encode(), webhook_id="ok"
        )
        assert fine.status_code == 200, fine.text[:300]
    assert _state(world, offer_id) == ("accepted", 2100.5, 1)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b'{"price": 1200, "price": 90}', "body: duplicate key 'price'"),
        (b'{"price": NaN}', "body: NaN is not a JSON number"),
        (b'{"price": "NaN"}', f"body.price: Value error, {MONEY_TEXT}"),  # no float's text
        (b'{"price": "-Infinity"}', f"body.price: Value error, {MONEY_TEXT}"),
        (b'{"price": "Infinity"}', f"body.price: Value error, {MONEY_TEXT}"),
        (b'{"price": 1e-999}', "body: 1e-999 is out of range"),
        (b'{"price": ' + b"1" * 4301 + b"}", "body: a whole number of 4301 digits is out of range"),
        (b'{"title": "x", "reason": ' + DEEP + b"}", "body: nested deeper than 32 levels"),
        ('{"title": "f\xfcr"}'.encode("latin-1"), "body: not UTF-8"),
    ],
    ids=[
        "duplicate-key",
        "nan",
        "nan-text",
        "minus-infinity-text",
        "infinity-text",
        "underflow",
        "long-integer",
        "deep",
        "latin-1",
    ],
)
def test_an_ambiguous_or_malformed_approval_is_422_and_the_offer_stays_proposed(
    unchanged_world, unchanged_url, raw: bytes, problem: str
) -> None:
    offer_id = unchanged_world.offers["globex"][0]
    with client_of(unchanged_url, timeout=60) as client:
        headers = {"content-type": "application/json", **unchanged_world.headers("am-globex")}
        answer = client.post(f"{API_PREFIX}/offers/{offer_id}/approve", content=raw, headers=headers)
        assert answer.status_code == 422, answer.text[:300]
        assert answer.json()["detail"].startswith(problem), answer.json()
        assert client.get(f"{API_PREFIX}/offers/{offer_id}", headers=headers).json()["status"] == "proposed"


def test_an_amount_as_decimal_text_is_read_exactly_and_is_the_same_outcome_as_the_number(world) -> None:
    """Many CRMs send money as text, so that no float rounds it; read as a float, "2100.5000000000000001" was
    2100.5 and applied, where 2100.505 has decimals too many."""
    offer_id = world.offers["acme"][0]
    refused = {
        "2100.5000000000000001": "amount: Value error, 2100.5000000000000001 has more than 15 significant "
        "digits",
        "1_850.50": f"amount: Value error, {MONEY_TEXT}",  # Python's float() reads it as 1850.5
        "1e3": f"amount: Value error, {MONEY_TEXT}",
        " 1850.50": f"amount: Value error, {MONEY_TEXT}",
        "2100.505": "cannot record the outcome of offer 1: revenue 2100.505 has more decimals than EUR has "
        "(2)",
    }
    with served(create_app(world.settings)) as base, client_of(base, timeout=60) as client:
        for text, problem in refused.items():
            answer = _signed(client, json.dumps(_outcome(offer_id, amount=text)).encode(), webhook_id="t")
            assert (answer.status_code, answer.json()["detail"]) == (422, problem), text
        assert _state(world, offer_id) == ("sent", None, 0)
        as_text = _signed(client, json.dumps(_outcome(offer_id, amount="1850.50")).encode(), webhook_id="t")
        assert (as_text.status_code, as_text.json()["applied"]) == (200, True), as_text.text[:300]
        as_number = _signed(client, json.dumps(_outcome(offer_id, amount=1850.5)).encode(), webhook_id="t")
        assert (as_number.status_code, as_number.json()["applied"]) == (200, False), as_number.text[:300]
    assert _state(world, offer_id) == ("accepted", 1850.5, 1)


def test_a_won_amount_of_minus_zero_is_stored_as_zero(world) -> None:
    """PostgreSQL keeps the sign of -0.0: the won revenue read "-0.0" in the API and the ledger."""
    offer_id = world.offers["acme"][0]
    with served(create_app(world.settings)) as base, client_of(base, timeout=60) as client:
        raw = json.dumps(_outcome(offer_id)).replace('"amount": 2100', '"amount": -0.0').encode()
        answer = _signed(client, raw, webhook_id="msg_minus_zero")
        assert answer.status_code == 200, answer.text[:300]
        shown = client.get(f"{API_PREFIX}/offers/{offer_id}", headers=world.headers("am-acme")).json()
    assert _state(world, offer_id) == ("accepted", 0.0, 1)
    assert (math.copysign(1, _state(world, offer_id)[1]), shown["revenue"]) == (1, 0.0)
    assert '"revenue":0.0' in json.dumps(shown, separators=(",", ":"))


def test_a_revenue_finer_than_the_currency_is_422_by_hand_too(unchanged_world, unchanged_url) -> None:
    offer_id = unchanged_world.offers["acme"][0]
    with client_of(unchanged_url, timeout=60) as client:
        outcome = f"{API_PREFIX}/offers/{offer_id}/outcome"
        body = {"accepted": True, "revenue": 99.999}
        answer = client.post(outcome, json=body, headers=unchanged_world.headers("am-acme"))
    assert answer.status_code == 422, answer.text[:300]
    assert answer.json()["detail"].endswith("revenue 99.999 has more decimals than EUR has (2)")
    assert _state(unchanged_world, offer_id) == ("sent", None, 0)


def test_a_revenue_of_true_is_422_by_hand_too(unchanged_world, unchanged_url) -> None:
    offer_id = unchanged_world.offers["acme"][0]
    with client_of(unchanged_url, timeout=60) as client:
        outcome = f"{API_PREFIX}/offers/{offer_id}/outcome"
        body = {"accepted": True, "revenue": True}
        answer = client.post(outcome, json=body, headers=unchanged_world.headers("am-acme"))
    assert answer.status_code == 422, answer.text[:300]
    assert "must be a number, not true or false" in answer.json()["detail"]
    assert _state(unchanged_world, offer_id) == ("sent", None, 0)


@pytest.mark.parametrize("accepted", [1, 0, 1.0, "yes", "true", "no", "on", None], ids=repr)
def test_an_outcome_by_hand_takes_accepted_only_as_true_or_false(world, accepted: object) -> None:
    offer_id = world.offers["acme"][0]
    with served(create_app(world.settings)) as base, client_of(base, timeout=60) as client:
        outcome = f"{API_PREFIX}/offers/{offer_id}/outcome"
        answer = client.post(outcome, json={"accepted": accepted}, headers=world.headers("am-acme"))
        assert answer.status_code == 422, answer.text[:300]
        assert answer.json() == {
            "error": "invalid_request",
            "detail": "body.accepted: Value error, must be true or false",
        }
        assert _state(world, offer_id) == ("sent", None, 0)
        fine = client.post(outcome, json={"accepted": False}, headers=world.headers("am-acme"))
    assert fine.status_code == 200, fine.text[:300]
    assert _state(world, offer_id) == ("declined", None, 0)


@pytest.mark.parametrize("offer_id", [True, False, "1", 1.0], ids=repr)
def test_a_crm_outcome_for_offer_true_is_422_not_offer_1(
    unchanged_world, unchanged_url, offer_id: object
) -> None:
    first = unchanged_world.offers["acme"][0]
    assert first == 1  # what true would have been read as
    with client_of(unchanged_url, timeout=60) as client:
        body = json.dumps(_outcome(first) | {"offer_id": offer_id}).encode()
        answer = _signed(client, body, webhook_id="msg_bool_id")
    assert answer.status_code == 422, answer.text[:300]
    assert (
        answer.json()["detail"]
        == 'offer_id: Value error, must be a whole number (as 42, not 42.0, true, false or "42")'
    )
    assert _state(unchanged_world, first) == ("sent", None, 0)


def test_an_outcome_naming_its_offers_currency_is_applied_and_a_retry_without_it_is_the_same(world) -> None:
    offer_id = world.offers["acme"][0]
    with served(create_app(world.settings)) as base, client_of(base, timeout=60) as client:
        named = _signed(client, json.dumps(_outcome(offer_id, currency="EUR")).encode(), webhook_id="eur")
        assert (named.status_code, named.json()["applied"]) == (200, True)
        again = _signed(client, json.dumps(_outcome(offer_id, currency="EUR")).encode(), webhook_id="eur")
        assert (again.status_code, again.json()["applied"]) == (200, False)
        other = _signed(client, json.dumps(_outcome(offer_id, currency="USD")).encode(), webhook_id="eur")
        assert (other.status_code, other.json()["error"]) == (409, "conflict")
    assert _state(world, offer_id) == ("accepted", 2100, 1)
