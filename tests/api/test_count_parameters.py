"""Every other whole number a query names (limit, offset, max_points, the console's page and days) is plain
decimal digits within its own bounds, as the ids are: pydantic's lax int would read "1.0", " 1", "01", "+1"
and "1_0" as 1 (or 10). The API's are found in its OpenAPI schema, the console's (left out of it) in its
routes; a new one is covered without a change here."""

from __future__ import annotations

import html

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.support import World, build_world
from tests.api.test_id_parameters import NOT_DIGITS, REFUSED, id_parameters, send_value
from tests.console.client import ConsoleClient, sign_in

SPELLINGS = [value for value, message in REFUSED.items() if message == NOT_DIGITS]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    # Validation comes before any query, and a refused request changes nothing: one SQLite world serves all.
    return build_world(f"sqlite:///{tmp_path_factory.mktemp('counts') / 'counts.db'}", api_docs="public")


def _api_counts(client: TestClient) -> list[tuple[str, str, str, int]]:
    """(method, path, name, lowest value) of every integer query parameter of the API that is no id."""
    schema = client.get("/openapi.json").json()
    ids = {(method, path, name) for method, path, _, name in id_parameters(schema)}
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                integer = parameter["schema"].get("type") == "integer"
                if integer and parameter["in"] == "query" and (method, path, parameter["name"]) not in ids:
                    found.append((method, path, parameter["name"], parameter["schema"]["minimum"]))
    return found


def _console_counts(app: FastAPI) -> list[tuple[str, str, int]]:
    """(path, name, lowest value) of every integer query parameter of a console page (not in the schema); read
    from the app the test requests (an app builds its routes once, ~0.2 CPU-s)."""
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.route
        if isinstance(route, APIRoute) and not route.include_in_schema and "GET" in route.methods:
            for field in _query_params(route.dependant):
                if field.field_info.annotation is int:
                    low = min(m.ge for m in field.field_info.metadata if hasattr(m, "ge"))
                    found.append((context.path, field.alias, low))
    return found


def _query_params(dependant: Dependant) -> list:
    """The query parameters of a route and of its dependencies."""
    return dependant.query_params + [q for sub in dependant.dependencies for q in _query_params(sub)]


def test_the_count_parameters_are_the_known_ones(module_client: TestClient, world: World) -> None:
    api = {name for _, _, name, _ in _api_counts(module_client)}
    console = {(path, name) for path, name, _ in _console_counts(module_client.app)}
    assert api == {"limit", "offset", "max_points"}
    assert console == {("/fleet", "page"), ("/machines/{machine_id}", "days")}


@pytest.mark.parametrize("value", SPELLINGS, ids=lambda v: repr(v)[:12])
def test_an_api_count_not_in_plain_digits_is_422_naming_the_parameter(
    module_client: TestClient, world: World, value: str
) -> None:
    wrong = {}
    for method, path, name, _ in _api_counts(module_client):
        answer = send_value(module_client, world, method, path, "query", name, value)
        if answer["http"] != 422 or not answer["detail"].startswith(f"query.{name}: {NOT_DIGITS}"):
            wrong[f"{method} {path} {name}"] = answer
    assert wrong == {}


def test_an_api_count_in_plain_digits_passes_its_check_down_to_its_bound(
    module_client: TestClient, world: World
) -> None:
    wrong = {}
    for method, path, name, low in _api_counts(module_client):
        for value in (str(low), str(low + 1)):
            answer = send_value(module_client, world, method, path, "query", name, value)
            if answer["http"] != 200:
                wrong[f"{method} {path} {name}={value}"] = answer
    assert wrong == {}


@pytest.mark.parametrize("value", SPELLINGS, ids=lambda v: repr(v)[:12])
def test_a_console_count_not_in_plain_digits_is_named_on_the_page(world: World, value: str) -> None:
    wrong = {}
    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "admin")
        for path, name, _ in _console_counts(client.app):
            page = client.get(_console_url(world, path), params={name: value})
            said = f"{name}: {NOT_DIGITS.removeprefix('Value error, ')}"
            if page.status_code != 400 or said not in html.unescape(page.text):
                wrong[f"{path} {name}"] = (page.status_code, page.text[:200])
    assert wrong == {}


def test_a_console_count_in_plain_digits_and_the_pages_own_links_open(world: World) -> None:
    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "admin")
        for path, name, low in _console_counts(client.app):
            for value in (str(low), str(low + 1)):
                assert client.get(_console_url(world, path), params={name: value}).status_code == 200
        # Page 2 links back to page 1 as the page writes it.
        second = client.get("/fleet", params={"page": "2"}).text
        links = {html.unescape(link) for link in _hrefs(second) if "page=" in link}
        assert links and all(client.get(link).status_code == 200 for link in links), links


def _console_url(world: World, path: str) -> str:
    return path.format(machine_id=world.machines["acme"][0])


def _hrefs(page: str) -> list[str]:
    return [part.split('"', 1)[0] for part in page.split('href="')[1:]]
