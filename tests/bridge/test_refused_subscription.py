"""A server that refuses the bridge's subscription (full, busy): the bridge says why, counts it, retries."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from asyncua import ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from prometheus_client import REGISTRY

from fleet.settings import MqttEndpoint
from ingest.opcua import bridge, mapping
from ingest.opcua.buffer import Buffer
from ingest.opcua.publisher import Publisher
from simulators.opcua_machine import MAP, MachineServer
from tests import services
from tests.bridge.test_hostile_values import Forwarder, readings, step_until_sent, until_sent


@pytest.fixture
def machines() -> Iterator[tuple[MachineServer, MachineServer]]:
    """Two presses on free ports."""
    servers = [MachineServer(port=services.free_port()), MachineServer(port=services.free_port())]
    for server in servers:
        server.start()
    yield servers[0], servers[1]
    for server in servers:
        server.stop()


def _refused(status: str) -> float:
    labels = {"status": status}
    return REGISTRY.get_sample_value("servicecast_bridge_opcua_refusals_total", labels) or 0.0


def limit_subscriptions(server: MachineServer, most: int) -> None:
    """How many subscriptions the server accepts in all (asyncua answers BadTooManySubscriptions past it)."""
    server.server.iserver.max_subscriptions = most


def _bridge(server_endpoint: str, buffer: Buffer) -> asyncio.Task:
    publisher = Publisher(endpoint=MqttEndpoint("mqtt://127.0.0.1:1"), client_id="unused", buffer=buffer)
    access = bridge.ServerAccess(endpoint=server_endpoint)
    return asyncio.create_task(
        bridge.run(access=access, mapping=mapping.load(MAP), buffer=buffer, publisher=publisher)
    )


async def _stop(*tasks: asyncio.Task) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.wait(set(tasks))
    for task in tasks:
        assert task.cancelled(), f"a bridge ended by itself: {task.exception()!r}"


def test_a_server_with_no_subscription_left_is_retried_and_other_bridges_go_on(machines, tmp_path, caplog):
    full, other = machines
    limit_subscriptions(full, 0)
    full_buffer = Buffer(tmp_path / "full.db", max_messages=1000)
    other_buffer = Buffer(tmp_path / "other.db", max_messages=1000)
    before = _refused("BadTooManySubscriptions")

    async def scenario() -> None:
        refused, going = _bridge(full.endpoint, full_buffer), _bridge(other.endpoint, other_buffer)
        await step_until_sent(other, other_buffer, 1, tries=60)
        assert not refused.done(), f"the refused bridge ended: {refused.exception()!r}"
        limit_subscriptions(full, 1000)  # a subscription of another client ended
        await step_until_sent(full, full_buffer, 1, tries=120)
        await _stop(refused, going)

    with caplog.at_level("WARNING", logger="ingest.opcua.bridge"):
        asyncio.run(scenario())
    assert len(readings(other_buffer, "spindle_temp_c")) > 1, "the other machine's bridge went on"
    assert len(readings(full_buffer, "spindle_temp_c")) > 1, "subscribed once the server had room"
    assert _refused("BadTooManySubscriptions") > before
    said = [r.getMessage() for r in caplog.records if r.name == bridge.log.name and "Bad" in r.getMessage()]
    assert said and full.endpoint in said[0] and "subscribing again in" in said[0], said


def test_a_server_restarted_without_room_for_the_subscription_is_subscribed_again_later(machines, tmp_path):
    """asyncua re-creates the subscription once after a reconnection; refused, the bridge stayed up sending
    nothing, for good."""
    before, after = machines
    limit_subscriptions(after, 0)
    buffer = Buffer(tmp_path / "b.db", max_messages=1000)

    async def scenario() -> None:
        forwarder = Forwarder(before.port)
        running = _bridge(await forwarder.start(), buffer)
        await step_until_sent(before, buffer, 1, tries=60)
        sent = len(readings(buffer, "spindle_temp_c"))
        forwarder.switch(after.port)  # the machine restarted, another client took its subscriptions
        await step_until_sent(after, buffer, sent, tries=6)
        limit_subscriptions(after, 1000)
        await step_until_sent(after, buffer, sent, tries=120)
        await _stop(running)
        forwarder.server.close()

    asyncio.run(scenario())
    sent = readings(buffer, "spindle_temp_c")
    assert len(sent) > 2 and sent[-1][1] > 40.0, "the restarted server's changes arrive"


def notify_events(server: MachineServer, on: bool) -> None:
    """Let clients subscribe to the press's events, or not (a server that refuses its alarm item)."""
    server._call(server.press.set_event_notifier([ua.EventNotifier.SubscribeToEvents] if on else []))


def events(buffer: Buffer, code: str) -> int:
    """How many buffered events carry this code."""
    return sum(f'"code":"{code}"'.encode() in payload for _, topic, payload in buffer.pending(0, 1000))


async def until(condition, *, tries: int) -> bool:  # noqa: ANN001
    """Whether `condition()` holds within `tries` checks 0.5 s apart."""
    for _ in range(tries):
        if condition():
            return True
        await asyncio.sleep(0.5)
    return condition()


def items_created(server: MachineServer) -> list[tuple[str, bool]]:
    """From now on, (node id, taken) of each monitored item a client asks this server for, in order."""
    created: list[tuple[str, bool]] = []

    async def record(event: ServerItemCallback, _dispatcher: object) -> None:
        for item, result in zip(event.request_params.ItemsToCreate, event.response_params, strict=True):
            created.append((item.ItemToMonitor.NodeId.to_string(), result.StatusCode.is_good()))

    server.server.subscribe_server_callback(CallbackType.ItemSubscriptionCreated, record)
    return created


def test_an_item_refused_when_the_subscription_is_recreated_is_asked_for_again_alone(
    machines, tmp_path, caplog
):
    """asyncua drops an item the server refuses when it re-creates the subscription after a reconnection,
    logs it under its own name and never asks again: the machine's alarms were lost for good, silently. The
    bridge asks for that item again, alone, on the same subscription: the other nodes' changes go on."""
    before, after = machines
    notify_events(after, False)  # the machine restarted with its alarm notifier not (yet) enabled
    created = items_created(after)
    spindle = after.variables["spindle_temp_c"][0].nodeid.to_string()
    press = after.press.nodeid.to_string()  # the alarm source
    buffer = Buffer(tmp_path / "b.db", max_messages=1000)
    refused_before = _refused("BadServiceUnsupported")

    async def scenario() -> None:
        forwarder = Forwarder(before.port)
        running = _bridge(await forwarder.start(), buffer)
        await until_sent(buffer, tries=120)
        forwarder.switch(after.port)
        # The re-creation's refusal and two of the bridge's own attempts (1 s, then 2 s apart).
        counted = lambda: _refused("BadServiceUnsupported") - refused_before >= 3  # noqa: E731
        assert await until(counted, tries=120), "the refused alarm item was not reported"
        for _ in range(6):  # while the alarm item is refused
            await asyncio.to_thread(after.step)
            await asyncio.sleep(0.5)
        await asyncio.to_thread(notify_events, after, True)
        taken = lambda: (press, True) in created  # noqa: E731
        assert await until(taken, tries=120), "not subscribed again once the server allows it"
        await asyncio.to_thread(after.alarm, True)
        assert await until(lambda: events(buffer, "spindle_overtemp") == 1, tries=60), "the alarm was lost"
        sent = len(readings(buffer, "spindle_temp_c"))
        await step_until_sent(after, buffer, sent, tries=60)
        await _stop(running)
        forwarder.server.close()

    with caplog.at_level("DEBUG", logger="ingest.opcua.bridge"):
        asyncio.run(scenario())
    sent = {value for _, value in readings(buffer, "spindle_temp_c")}
    changed = [c.value for c in after.changes if c.sensor == "spindle_temp_c"]
    assert not [value for value in changed if value not in sent], "changes made while the alarm was refused"
    assert [node for node, _ in created].count(spindle) == 1, "the other items were subscribed to again"
    assert events(buffer, "opcua.identification") == 1, "a new subscription: the identification again"
    ours = [r for r in caplog.records if r.name == bridge.log.name]
    said = [r for r in ours if "BadServiceUnsupported" in r.getMessage()]
    warned = [r.getMessage() for r in said if r.levelname == "WARNING"]
    assert len(warned) == 1 and len(said) >= 3, [r.getMessage() for r in said]  # logged once, retried
    assert (
        "after a reconnection (BadServiceUnsupported for nsu=urn:servicecast:example:press;s=Press7)"
        in (warned[0])
    )
