"""The read path: key lookups collapse, and the read pool survives a burst of cold keys."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from sqlalchemy import event

from api import auth
from api.app import API_PREFIX, create_app
from api.deps import _authenticate_once
from tests.api.support import build_world


@pytest.fixture
def world(database_url):
    return build_world(database_url)


def test_concurrent_misses_of_one_key_look_it_up_once(world):
    lookups = []

    def count_key_lookups(_conn, _cursor, statement, *_args) -> None:
        if "api_keys" in statement:
            lookups.append(statement)

    event.listen(world.engine, "before_cursor_execute", count_key_lookups)
    auth.principals.clear()

    async def burst():
        return await asyncio.gather(
            *(_authenticate_once(world.engine, world.tokens["tech"]) for _ in range(30))
        )

    principals = asyncio.run(burst())
    assert {p.name for p in principals} == {"tech"}
    assert len(lookups) == 1


def test_a_burst_larger_than_the_pool_with_cold_keys_is_served(world):
    # More requests at once than the read pool holds (40 + 10), every key unknown to the cache: a
    # connection taken before the key lookup's await would starve the lookups and time out the pool.
    auth.principals.clear()
    app = create_app(world.settings)

    async def burst():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                paths = [f"{API_PREFIX}/alerts", f"{API_PREFIX}/machines/{world.machines['acme'][0]}"]
                requests = [
                    client.get(paths[i % 2], headers=world.headers(who))
                    for i in range(80)
                    for who in (["admin", "tech", "cust-acme"][i % 3],)
                ]
                return await asyncio.gather(*requests)

    # In a thread of its own: a starved pool blocks the event loop itself, which no asyncio timeout ends.
    responses: list[httpx.Response] = []
    runner = threading.Thread(target=lambda: responses.extend(asyncio.run(burst())), daemon=True)
    runner.start()
    runner.join(timeout=60)
    assert not runner.is_alive(), "the burst did not finish: the read pool is starved"
    assert [r.status_code for r in responses] == [200] * 80
