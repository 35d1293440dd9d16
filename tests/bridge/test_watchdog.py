"""asyncua's stale-subscription watchdog in the bridge: a re-creation the server refused is not its end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from asyncua import ua
from asyncua.common.utils import ServiceError

from ingest.opcua.buffer import Buffer
from simulators.opcua_machine import MachineServer
from tests import services
from tests.bridge.support import until
from tests.bridge.test_hostile_values import readings, step_until_sent
from tests.bridge.test_restore import assert_each_change_sent_once, bridged, subscriptions


@pytest.fixture
def machine() -> Iterator[MachineServer]:
    """The example press on a free port."""
    server = MachineServer(port=services.free_port()).start()
    yield server
    server.stop()


def silence(server: MachineServer) -> set[int]:
    """The server stops publishing every subscription it holds (a stuck publishing loop: no data, not even a
    keep-alive), which keeps its items; the ids of those subscriptions."""

    async def stop() -> set[int]:
        held = server.server.iserver.subscription_service.subscriptions
        for subscription in held.values():
            subscription._task.cancel()
        return set(held)

    return server._call(stop())


def refuse_creation_once(server: MachineServer, status: int) -> list[str]:
    """The next subscription a client asks the server for is refused with `status`; what fired is listed."""
    service = server.server.iserver.subscription_service
    create = service.create_subscription
    fired: list[str] = []

    async def refusing(*args: object, **kwargs: object) -> object:
        if not fired:
            fired.append(f"refused with {ua.StatusCode(status).name}")
            raise ServiceError(status)
        return await create(*args, **kwargs)

    service.create_subscription = refusing
    return fired


def monitored(server: MachineServer, ids: set[int]) -> int:
    """How many monitored items the server's subscriptions `ids` hold."""
    held = server.server.iserver.subscription_service.subscriptions
    return sum(len(held[i].monitored_item_srv._monitored_items) for i in ids if i in held)


def recreated(server: MachineServer, silent: set[int], items: int) -> bool:
    """A subscription other than the silent ones holds their items again: only then does the server report
    a change (one made before its items exist reaches no client; it failed the test once at CI load)."""
    return monitored(server, subscriptions(server) - silent) >= items


def test_a_stale_subscription_whose_recreation_the_server_refused_once_is_recreated_when_stale_again(
    machine: MachineServer, tmp_path
) -> None:
    """asyncua's watchdog ended after a failed re-creation (it asks for a reconnection and returns): the
    next subscription that fell silent was never re-created, and the bridge sat connected sending nothing."""
    buffer = Buffer(tmp_path / "b.db", max_messages=1000)

    async def scenario() -> None:
        async with bridged(machine, buffer, tmp_path):
            # "Cannot take us now": a refusal the bridge retries as a lost connection.
            fired = refuse_creation_once(machine, ua.StatusCodes.BadResourceUnavailable)
            silent = silence(machine)
            items = monitored(machine, silent)
            assert items > 0, "the silenced subscription held no items"
            await until(lambda: fired and recreated(machine, silent, items), "recreated after the refusal")
            await step_until_sent(machine, buffer, len(readings(buffer, "spindle_temp_c")))
            silent = silence(machine)
            await until(lambda: recreated(machine, silent, items), "recreated when stale again")
            await step_until_sent(machine, buffer, len(readings(buffer, "spindle_temp_c")))

    asyncio.run(scenario())
    assert_each_change_sent_once(machine, buffer)
