"""Fixtures of the API tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.support import World


@pytest.fixture(scope="module")
def module_client(world: World) -> Iterator[TestClient]:
    """One app for a module whose requests change nothing: a new app builds its OpenAPI schema (~0.25 s)."""
    with world.client() as client:
        yield client
