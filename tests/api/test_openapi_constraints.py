"""The published OpenAPI schema states every bound the API enforces, in JSON Schema's own words."""

from __future__ import annotations

from tests.api.support import build_world

# pydantic's names for bounds: in a published schema, unknown keywords that clients and fuzzers ignore.
PYDANTIC_BOUNDS = {"ge", "gt", "le", "lt"}


def _leaks(node: object, path: str = "#") -> list[str]:
    """Paths of schema objects that carry a pydantic bound instead of minimum/maximum."""
    if isinstance(node, list):
        return [leak for i, item in enumerate(node) for leak in _leaks(item, f"{path}/{i}")]
    if not isinstance(node, dict):
        return []
    here = [path] if "type" in node and PYDANTIC_BOUNDS & node.keys() else []
    return here + [leak for key, value in node.items() for leak in _leaks(value, f"{path}/{key}")]


def test_every_bound_of_a_request_body_is_published_as_minimum_or_maximum(tmp_path) -> None:
    world = build_world(f"sqlite:///{tmp_path / 'openapi.db'}", api_docs="public")
    with world.client() as client:
        schema = client.get("/openapi.json").json()
    assert _leaks(schema) == []
    revenue = schema["components"]["schemas"]["OutcomeIn"]["properties"]["revenue"]["anyOf"][0]
    assert (revenue["minimum"], revenue["maximum"]) == (0, 100_000_000)
