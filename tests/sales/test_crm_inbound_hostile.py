"""Hostile or odd CRM outcome webhooks over real HTTP: each is refused with a 4xx and a reason, never a
server error, and leaves the offer as it was."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from api.app import create_app
from api.delivery import signed_headers
from fleet.settings import Settings, describe_error
from fleet.tables import utcnow
from tests.api.routing_support import SECRET
from tests.api.support import client_of, served
from tests.sales import test_crm_inbound
from tests.sales.test_crm_inbound import DATE, URL, _post, _state

world = test_crm_inbound.world  # the same fixture: a sent offer of acme
unchanged_world, unchanged_url = test_crm_inbound.unchanged_world, test_crm_inbound.unchanged_url
LOST = {"outcome": "lost", "reason": "budget frozen", "date": DATE}


def _signed_at(client: httpx.Client, body: dict, *, webhook_id: str, stamp: bytes) -> httpx.Response:
    """A delivery correctly signed for now, with its timestamp header replaced by `stamp`."""
    text = json.dumps(body)
    headers = signed_headers(secret=SECRET, event_id=webhook_id, body=text, at=utcnow())
    headers["webhook-timestamp"] = stamp
    return client.post(URL, content=text.encode(), headers=headers)


def test_a_timestamp_that_is_not_unix_seconds_is_refused_as_unsigned(unchanged_world, unchanged_url) -> None:
    offer_id = unchanged_world.offers["acme"][0]
    body = {**LOST, "offer_id": offer_id}
    # '²' passes str.isdigit() but not int(); 20 and 5,000 digits overflow datetime and int() respectively.
    stamps = ["²".encode("latin-1"), b"9" * 20, b"9" * 5000, b"-5", b"1e9", b"17.5"]
    for stamp in stamps:
        with client_of(unchanged_url, timeout=30) as client:
            answer = _signed_at(client, body, webhook_id="msg_stamp", stamp=stamp)
        assert (answer.status_code, answer.json()["error"]) == (401, "bad_signature"), stamp[:20]
    with client_of(unchanged_url, timeout=30) as client:  # signed, but for the year 5000
        future = _post(client, body, webhook_id="msg_future", at=datetime(5000, 1, 1, tzinfo=UTC))
    assert (future.status_code, future.json()["error"]) == (401, "stale_timestamp")
    assert _state(unchanged_world, offer_id) == ("sent", None, 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("date", "2026-11-30T10:00:00"),  # no offset: which 10:00?
        ("date", "0001-01-01T00:00:00+01:00"),  # before year 1 in UTC
        ("date", "9999-12-31T23:30:00-01:00"),  # after year 9999 in UTC
        ("reason", "budget\u0000frozen"),  # PostgreSQL text cannot hold NUL
        ("amount", -1),
        ("amount", 1e9),
        ("amount", True),  # JSON true is no amount (pydantic would read it as 1.0)
    ],
)
def test_an_outcome_the_store_cannot_hold_is_422_and_changes_nothing(
    unchanged_world, unchanged_url, field, value
) -> None:
    offer_id = unchanged_world.offers["acme"][0]
    body = {**LOST, "outcome": "won", "offer_id": offer_id, field: value}
    with client_of(unchanged_url, timeout=30) as client:
        answer = _post(client, body, webhook_id="msg_odd")
        # NUL is refused for every JSON body of the API (invalid_request), the rest by the outcome's model.
        assert answer.status_code == 422 and answer.json()["error"] in ("invalid_input", "invalid_request")
        assert answer.json()["detail"].removeprefix("body.").startswith(f"{field}:")
    assert _state(unchanged_world, offer_id) == ("sent", None, 0)


def test_a_webhook_id_longer_than_the_store_keeps_is_422(world) -> None:
    offer_id = world.offers["acme"][0]
    with served(create_app(world.settings)) as base, client_of(base, timeout=30) as client:
        too_long = _post(client, {**LOST, "offer_id": offer_id}, webhook_id="m" * 129)
        assert (too_long.status_code, too_long.json()["error"]) == (422, "invalid_input")
        assert _state(world, offer_id) == ("sent", None, 0)
        longest = _post(client, {**LOST, "offer_id": offer_id}, webhook_id="m" * 128)
        assert longest.status_code == 200 and longest.json()["applied"] is True
    assert _state(world, offer_id) == ("declined", None, 1)


def test_the_same_webhook_id_with_a_different_outcome_is_409_not_a_silent_no_op(world) -> None:
    offer_id = world.offers["acme"][0]
    lost = {**LOST, "offer_id": offer_id}
    with served(create_app(world.settings)) as base, client_of(base, timeout=30) as client:
        assert _post(client, lost, webhook_id="msg_1").json()["applied"] is True
        reordered = dict(reversed(lost.items()))  # the same outcome, serialised differently
        assert _post(client, reordered, webhook_id="msg_1").json()["applied"] is False
        changed = _post(client, {**lost, "outcome": "won", "amount": 900}, webhook_id="msg_1")
        assert (changed.status_code, changed.json()["error"]) == (409, "conflict")
        assert "msg_1" in changed.json()["detail"]
    assert _state(world, offer_id) == ("declined", None, 1)


def test_rotated_keys_several_signatures_and_a_secret_without_its_prefix_verify(world) -> None:
    offer_id = world.offers["acme"][0]
    text = json.dumps({**LOST, "offer_id": offer_id})
    good = signed_headers(secret=SECRET, event_id="msg_rot", body=text, at=utcnow())
    old_key = "v1,b2xkLWtleS1zaWduYXR1cmUtb2YtMzItYnl0ZXMhISE="
    headers = good | {"webhook-signature": f"v1,!!notbase64 {old_key} v2,x {good['webhook-signature']}"}
    unprefixed = world.settings.model_copy(
        update={"crm_inbound_secret": SecretStr(SECRET.removeprefix("whsec_"))}
    )
    with served(create_app(unprefixed)) as base, client_of(base, timeout=30) as client:
        answer = client.post(URL, content=text.encode(), headers=headers)
        assert answer.status_code == 200 and answer.json()["applied"] is True
    assert _state(world, offer_id) == ("declined", None, 1)


@pytest.mark.parametrize("secret", ["whsec_!!not-base64!!", "whsec_", "whsec_QUJDR"])
def test_a_signing_secret_that_is_not_base64_is_refused_when_settings_load(secret: str) -> None:
    for name in ("crm_inbound_secret", "webhook_secret"):
        with pytest.raises(ValidationError) as refused:
            Settings(**{name: secret})
        assert describe_error(refused.value) == (
            f"invalid setting SERVICECAST_{name.upper()}: must be whsec_ followed by base64"
        )


def test_an_empty_signing_secret_is_unset() -> None:
    settings = Settings(crm_inbound_secret="", webhook_secret="")
    assert (settings.crm_inbound_secret, settings.webhook_secret) == (None, None)


def test_a_body_far_larger_than_an_outcome_is_413_before_it_is_read_whole(
    unchanged_world, unchanged_url
) -> None:
    offer_id = unchanged_world.offers["acme"][0]
    padded = json.dumps({**LOST, "offer_id": offer_id, "padding": "x" * 1_000_000})

    def chunks():
        for start in range(0, len(padded), 65_536):
            yield padded[start : start + 65_536].encode()

    with client_of(unchanged_url, timeout=30) as client:
        headers = signed_headers(secret=SECRET, event_id="msg_big", body=padded, at=utcnow())
        declared = client.post(URL, content=padded.encode(), headers=headers)
        streamed = client.post(URL, content=chunks(), headers=headers)  # chunked: no content-length
        assert (declared.status_code, streamed.status_code) == (413, 413)
    assert _state(unchanged_world, offer_id) == ("sent", None, 0)


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("content_type", [FORM, "multipart/form-data; boundary=x", "multipart/form-data"])
def test_an_outcome_sent_with_a_form_content_type_is_answered_not_a_500(world, content_type: str) -> None:
    """`curl -d` without `-H` says it is a form (urlencoded): the signed bytes are still the outcome. So
    they are when a client calls them multipart: answered 400 'Invalid multipart data.' before, by the
    NUL check's reading of a form the route never reads."""
    offer_id = world.offers["acme"][0]
    text = json.dumps({**LOST, "offer_id": offer_id})
    headers = signed_headers(secret=SECRET, event_id="msg_form", body=text, at=utcnow())
    headers["content-type"] = content_type
    with served(create_app(world.settings)) as base:
        with client_of(base, timeout=30) as client:
            signed = client.post(URL, content=text.encode(), headers=headers)
        assert (signed.status_code, signed.json().get("applied")) == (200, True), signed.text[:300]
        with client_of(base, timeout=30) as client:
            unsigned = client.post(URL, content=b"offer_id=1&outcome=won", headers={"content-type": FORM})
        assert (unsigned.status_code, unsigned.json()["error"]) == (401, "bad_signature")
        with client_of(base, timeout=30) as client:
            padded = client.post(URL, content=b"a=" + b"x" * 300_000, headers={"content-type": content_type})
        assert padded.status_code == 413
    assert _state(world, offer_id) == ("declined", None, 1)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_signature_header_given_twice_is_refused_by_name(unchanged_world, unchanged_url, name: str) -> None:
    """Which of two webhook-ids was signed, or applied? The answer names the header, not a mismatch."""
    offer_id = unchanged_world.offers["acme"][0]
    text = json.dumps({**LOST, "offer_id": offer_id})
    headers = signed_headers(secret=SECRET, event_id="msg_twice", body=text, at=utcnow())
    pairs = [*headers.items(), (name, headers[name])]  # even the same value twice
    with client_of(unchanged_url, timeout=30) as client:
        answer = client.post(URL, content=text.encode(), headers=pairs)
    assert (answer.status_code, answer.json()["error"]) == (401, "bad_signature")
    assert answer.json()["detail"].startswith(f"{name} header given more than once")
    assert _state(unchanged_world, offer_id) == ("sent", None, 0)


@pytest.mark.parametrize("body", [[1, 2], "won", 3, None], ids=repr)
def test_a_body_that_is_no_json_object_says_body(unchanged_url, body: object) -> None:
    with client_of(unchanged_url, timeout=30) as client:
        answer = _post(client, body, webhook_id="msg_array")
    assert (answer.status_code, answer.json()["detail"]) == (422, "body: must be a JSON object (an outcome)")
