"""Every number and yes/no in a request body, found in the app's own OpenAPI schema, is not guessed from
another JSON type: pydantic's lax mode would read `true` as 1 (assignee 1, customer 1, a price of 1.00) and
"1" as an id, and 1.0 as id 1 (a float past 2**53 as another id than the one written). Each is a 422 naming
the field, and nothing is stored."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from api.app import API_PREFIX
from fleet.db import session
from fleet.tables import Alert, NotificationSubscription, Offer, WorkflowEvent
from tests.api.support import World, build_world

# What each JSON type refuses, and the message it gives.
REFUSED = {
    "integer": (
        [True, False, "1", 1.0, 4478.0],
        'must be a whole number (as 42, not 42.0, true, false or "42")',
    ),
    "number": ([True, False], "must be a number, not true or false"),
    "boolean": ([1, 0, "true"], "must be true or false"),
}


def _assign(world: World) -> tuple[str, str, dict, int]:
    return f"alerts/{world.alerts['acme'][0]}/assign", "tech", {"assignee_id": world.users["tech"]}, 200


def _approve(world: World) -> tuple[str, str, dict, int]:
    return f"offers/{world.offers['acme'][0]}/approve", "am-acme", {"price": 2100}, 200


def _outcome(world: World) -> tuple[str, str, dict, int]:
    # A proposed offer has no outcome yet: a body that passes validation meets 409.
    return f"offers/{world.offers['acme'][0]}/outcome", "am-acme", {"accepted": True, "revenue": 2100}, 409


def _subscribe(world: World) -> tuple[str, str, dict, int]:
    body = {"channel": "email", "address": "tech@oem.example", "customer_id": world.customers["acme"]}
    return "notifications/subscriptions", "tech", body, 201


# Every number or yes/no of every request body: (method, path in the schema, field) → (its JSON type, where
# pydantic names it after `body.`, a request that passes validation with its expected status).
CASES: dict[tuple[str, str, str], tuple[str, str, Callable[[World], tuple[str, str, dict, int]]]] = {
    ("post", "/alerts/{alert_id}/assign", "assignee_id"): ("integer", "assignee_id", _assign),
    ("post", "/offers/{offer_id}/approve", "price"): ("number", "price", _approve),
    ("post", "/offers/{offer_id}/outcome", "accepted"): ("boolean", "accepted", _outcome),
    ("post", "/offers/{offer_id}/outcome", "revenue"): ("number", "revenue", _outcome),
    ("post", "/notifications/subscriptions", "customer_id"): ("integer", "email.customer_id", _subscribe),
    ("post", "/notifications/subscriptions", "site_id"): ("integer", "email.site_id", _subscribe),
}


def _scalars(node: object, components: dict, found: set[tuple[str, str]], name: str = "") -> None:
    """The (name, JSON type) of every number, integer and boolean under a schema node."""
    if isinstance(node, list):
        for item in node:
            _scalars(item, components, found, name)
        return
    if not isinstance(node, dict):
        return
    if "$ref" in node:
        _scalars(components[node["$ref"].rsplit("/", 1)[1]], components, found, name)
    if node.get("type") in REFUSED:
        found.add((name, node["type"]))
    for key in ("anyOf", "oneOf", "allOf", "items"):
        _scalars(node.get(key), components, found, name)
    for field, inner in node.get("properties", {}).items():
        _scalars(inner, components, found, field)


@pytest.fixture
def world(database_url: str) -> World:
    return build_world(database_url, api_docs="public")


def _stored(world: World) -> tuple:
    """What any of these requests would change: audit events, subscriptions, alerts and offers."""
    with session(world.engine) as sess:
        return (
            sess.scalar(select(func.count()).select_from(WorkflowEvent)),
            sess.scalar(select(func.count()).select_from(NotificationSubscription)),
            sess.execute(select(Alert.id, Alert.status, Alert.assignee_id).order_by(Alert.id)).all(),
            sess.execute(select(Offer.id, Offer.status, Offer.price, Offer.revenue).order_by(Offer.id)).all(),
        )


def test_every_number_and_yes_no_of_a_request_body_is_checked_here(world: World) -> None:
    with world.client() as client:
        schema = client.get("/openapi.json").json()
    found = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                fields: set[tuple[str, str]] = set()
                _scalars(content["schema"], schema["components"]["schemas"], fields)
                for field, kind in fields:
                    found[(method, path.removeprefix(API_PREFIX), field)] = kind
    assert found == {key: kind for key, (kind, _, _) in CASES.items()}


@pytest.mark.parametrize(
    ("case", "value"),
    [(case, value) for case, (kind, _, _) in CASES.items() for value in REFUSED[kind][0]],
    ids=repr,
)
def test_a_number_or_yes_no_of_another_json_type_is_422_naming_the_field(
    world: World, case: tuple[str, str, str], value: object
) -> None:
    kind, where, request = CASES[case]
    path, who, body, fine = request(world)
    before = _stored(world)
    with world.client() as client:
        url = f"{API_PREFIX}/{path}"
        answer = client.post(url, json=body | {case[2]: value}, headers=world.headers(who))
        assert answer.status_code == 422, answer.text
        assert answer.json() == {
            "error": "invalid_request",
            "detail": f"body.{where}: Value error, {REFUSED[kind][1]}",
        }
        assert _stored(world) == before
        assert client.post(url, json=body, headers=world.headers(who)).status_code == fine
