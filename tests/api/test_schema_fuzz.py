"""schemathesis against the app's own OpenAPI schema, in process: no server errors, no schema violations."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import ignored_auth

from api.app import create_app
from fleet import migrate
from fleet.db import make_engine
from tests.api.support import build_world

EXAMPLES = 50
HYPOTHESIS = {"deadline": None, "suppress_health_check": list(HealthCheck), "database": None}
# Words of the 422s of rules the OpenAPI schema cannot state.
UNSTATED = (
    # Limits spanning two parameters: start and end too far apart, or reversed.
    "SERVICECAST_API_TELEMETRY_MAX_WINDOW_DAYS",
    "the window's start must not be after its end",
    # That a window lies inside the calendar in UTC (year 1 or 9999 with an offset may not).
    "a window must lie between",
    # What a catalog version's YAML must hold: it is checked as the catalog file is.
    '"error":"invalid_catalog_file"',
    # How many decimals the currency of the offer being approved has (2 for EUR, 0 for JPY).
    "more decimals than",
    # That a webhook address is a URL an HTTP client can parse (its host, port, IDNA labels).
    "address: Value error, not a URL",
    # That it is no local address (http://0 is 0.0.0.0 to the resolver) unless the admin allows it.
    "not allowed by SERVICECAST_WEBHOOK_ALLOW_NETWORKS",
    # That an e-mail address is one mailbox to Python's mail header (no comma, group, comment…).
    "address: Value error, a mail ",
)


@pytest.fixture
def target(tmp_path):
    """The app's schema as schemathesis reads it, and an admin's headers."""
    url = f"sqlite:///{tmp_path / 'fuzz.db'}"
    world = build_world(url)
    app = create_app(world.settings)
    engine = make_engine(url)
    migrate.ensure_schema(engine)
    # schemathesis calls the ASGI app without its lifespan; give the app what the lifespan would.
    app.state.engine, app.state.settings = engine, world.settings
    yield SimpleNamespace(
        schema=schemathesis.openapi.from_asgi("/openapi.json", app), headers=world.headers("admin")
    )
    engine.dispose()


@pytest.mark.slow
def test_every_operation_meets_its_schema(target):
    operations = [result.ok() for result in target.schema.get_all_operations()]
    assert len(operations) >= 15
    calls = {}
    auth_enforced: set[str] = set()

    def fuzz(operation) -> None:
        label = f"{operation.method.upper()} {operation.path}"
        calls[label] = 0

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, **HYPOTHESIS)
        def check(case) -> None:
            calls[label] += 1
            meets_its_schema(case, case.call(headers=target.headers), auth_enforced)

        check()

    for operation in operations:
        fuzz(operation)
    # Operations whose inputs allow fewer distinct examples (no parameters) run fewer; the rest run 50.
    assert sum(1 for n in calls.values() if n >= EXAMPLES) >= len(calls) // 2, calls


def test_a_reversed_telemetry_window_meets_the_schema(target):
    """A start after the end is valid to the schema (it cannot relate two parameters); its 422 must pass."""
    operation = target.schema["/api/v1/machines/{machine_id}/telemetry"]["GET"]

    def reversed_window(case):  # noqa: ANN001, ANN202
        case.query = {"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}
        return case

    @given(case=operation.as_strategy().map(reversed_window))
    @settings(max_examples=1, **HYPOTHESIS)
    def check(case) -> None:
        response = case.call(headers=target.headers)
        assert response.status_code == 422, response.text
        meets_its_schema(case, response)

    check()


def meets_its_schema(case, response, auth_enforced: set[str] | None = None) -> None:  # noqa: ANN001
    """Validate a response, letting through the refusals of rules the OpenAPI schema cannot state.

    `auth_enforced`: the operations whose refusal of a missing and a wrong key schemathesis' `ignored_auth`
    probes already saw in this test, probed once each as schemathesis' own runner does (not on every success).
    """
    if response.status_code == 422 and (
        any(words in response.text for words in UNSTATED)
        # Or that an id is written as an integer: 42.0 is the integer 42 to JSON Schema, not to the API.
        or ("not 42.0" in response.text and _holds_a_whole_float(case))
    ):
        return
    enforced = set() if auth_enforced is None else auth_enforced

    @functools.wraps(ignored_auth)
    def ignored_auth_once(ctx, response, case):  # noqa: ANN001, ANN202
        ctx.auth_enforced_operations = enforced
        return ignored_auth(ctx, response, case)

    case.validate_response(response, excluded_checks=[ignored_auth], additional_checks=[ignored_auth_once])


def _holds_a_whole_float(case) -> bool:  # noqa: ANN001
    """Whether a generated request names a number as a float without a fraction (5.0) anywhere."""
    return any(_whole_floats(part) for part in (case.body, case.path_parameters, case.query))


def _whole_floats(value: object) -> bool:
    if isinstance(value, dict):
        return any(_whole_floats(item) for item in value.values())
    if isinstance(value, list):
        return any(_whole_floats(item) for item in value)
    return isinstance(value, float) and value.is_integer()
