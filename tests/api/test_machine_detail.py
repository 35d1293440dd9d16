"""The machine detail, written in the route's thread, answers the JSON that response_model writes."""

from __future__ import annotations

import pytest

from api.app import API_PREFIX
from tests.api.support import build_world


@pytest.fixture
def world(database_url):
    return build_world(database_url)


def test_the_detail_writes_the_bytes_the_list_writes_for_the_machine(world):
    globex, machine = world.customers["globex"], world.machines["globex"][0]
    with world.client() as client:

        def bodies(who: str) -> tuple[bytes, bytes]:
            headers = world.headers(who)
            detail = client.get(f"{API_PREFIX}/machines/{machine}", headers=headers)
            listed = client.get(f"{API_PREFIX}/machines?customer_id={globex}", headers=headers)
            assert detail.status_code == listed.status_code == 200
            assert detail.headers["content-type"] == listed.headers["content-type"] == "application/json"
            return detail.content, listed.content

        detail, listed = bodies("am-globex")
        assert detail in listed and detail.startswith(b'{"id":') and b'"risk":0.9' in detail
        revoked = client.delete(
            f"{API_PREFIX}/customers/{globex}/grants/offers", headers=world.headers("admin")
        )
        assert revoked.status_code == 200
        detail, listed = bodies("am-globex")
        assert detail in listed and b'"risk":null,"failure_mode":null,"predicted_at":null' in detail
        assert client.get(f"{API_PREFIX}/machines/999999", headers=world.headers("admin")).status_code == 404
