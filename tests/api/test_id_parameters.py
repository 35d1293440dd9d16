"""Every id a path or query names, found in the app's own OpenAPI schema, is plain decimal digits within its
column's range: pydantic's lax int would read "1.0", " 1", "01", "+1" and "1_0" as id 1 (or 10). Anything
else is a 422 naming the parameter; the id written in digits still passes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import API_PREFIX
from tests.api.support import World, build_world

NOT_DIGITS = 'Value error, must be a whole number in plain digits (as 42, not 42.0, 042, +42 or " 42")'
# Text that is no id in plain digits, and the message each answers with; past-the-range ids and 0 keep the
# bound's own words.
REFUSED = {
    "1.0": NOT_DIGITS,
    "1e0": NOT_DIGITS,
    "1.5": NOT_DIGITS,
    "true": NOT_DIGITS,
    " 1": NOT_DIGITS,
    "1 ": NOT_DIGITS,
    "01": NOT_DIGITS,
    "+1": NOT_DIGITS,
    "1_0": NOT_DIGITS,
    "-1": NOT_DIGITS,
    "١": NOT_DIGITS,  # an Arabic-Indic one: a digit to str.isdigit and int(), not to a client
    "0": "Input should be greater than or equal to 1",
    str(2**63): "Input should be less than or equal to ",
    "9" * 5000: "Input should be less than or equal to ",
}
# Values the other path parameters of an operation take in these requests.
OTHER = {"purpose": "service"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    # Validation comes before any query, and a refused request changes nothing: one SQLite world serves all.
    return build_world(f"sqlite:///{tmp_path_factory.mktemp('ids') / 'ids.db'}", api_docs="public")


def id_parameters(schema: dict) -> list[tuple[str, str, str, str]]:
    """(method, path, where, name) of every integer path or query parameter that names an object."""
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                types = {part.get("type") for part in parameter["schema"].get("anyOf", [parameter["schema"]])}
                is_id = parameter["name"].endswith("_id") or parameter["name"] == "version"
                if "integer" in types and is_id and parameter["in"] in ("path", "query"):
                    found.append((method, path, parameter["in"], parameter["name"]))
    return found


def send_value(
    client: TestClient, world: World, method: str, path: str, where: str, name: str, value: str
) -> dict:
    """The answer to `method path` with `value` as the parameter and valid values for the others."""
    given = {name: value} if where == "path" else {}
    url = path.format(**{key: given.get(key, OTHER.get(key, "1")) for key in _path_names(path)})
    params = {name: value} if where == "query" else {}
    answer = client.request(method, url, params=params, headers=world.headers("admin"))
    body = answer.json() if answer.content else {}
    return {"http": answer.status_code, **(body if isinstance(body, dict) else {})}


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def test_the_id_parameters_are_the_known_ones(module_client: TestClient) -> None:
    found = id_parameters(module_client.get("/openapi.json").json())
    names = {(where, name) for _, _, where, name in found}
    assert names == {
        ("path", "customer_id"),
        ("path", "machine_id"),
        ("path", "alert_id"),
        ("path", "offer_id"),
        ("path", "subscription_id"),
        ("path", "version"),
        ("query", "customer_id"),
        ("query", "machine_id"),
        ("query", "subject_id"),
    }
    assert all(path.startswith(API_PREFIX) for _, path, _, _ in found)


@pytest.mark.parametrize(("value", "message"), REFUSED.items(), ids=lambda v: repr(v)[:12])
def test_an_id_not_in_plain_digits_is_422_naming_the_parameter(
    module_client: TestClient, world: World, value: str, message: str
) -> None:
    found = id_parameters(module_client.get("/openapi.json").json())
    wrong = {}
    for method, path, where, name in found:
        answer = send_value(module_client, world, method, path, where, name, value)
        if answer["http"] != 422 or not answer["detail"].startswith(f"{where}.{name}: {message}"):
            wrong[f"{method} {path} {where}.{name}"] = answer
    assert wrong == {}


def test_an_id_in_plain_digits_passes_its_check(module_client: TestClient, world: World) -> None:
    found = id_parameters(module_client.get("/openapi.json").json())
    wrong = {}
    for method, path, where, name in found:
        answer = send_value(module_client, world, method, path, where, name, "1")
        # A request without its body is still refused, by the body: never by the id.
        if answer["http"] >= 500 or f"{where}.{name}" in answer.get("detail", ""):
            wrong[f"{method} {path} {where}.{name}"] = answer
    assert wrong == {}
