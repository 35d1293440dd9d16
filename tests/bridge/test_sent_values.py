"""What the bridge counts as sent: only a value the buffer stored, whichever subscription brings it again."""

from __future__ import annotations

import asyncio

from fleet.settings import MqttEndpoint
from ingest.opcua import bridge, connection, mapping, subscribing
from ingest.opcua.buffer import Buffer
from ingest.opcua.publisher import Publisher
from simulators.opcua_machine import MAP
from tests.bridge.support import LOADED_TIMEOUT_S, until, values_notified
from tests.bridge.test_hostile_values import machine, readings  # noqa: F401 (machine: the fixture)


def test_a_value_a_full_buffer_refused_is_buffered_when_asyncua_recreates_the_subscription(
    machine,  # noqa: F811
    tmp_path,
) -> None:
    """drop-newest refuses new messages while full; a re-created subscription's initial value (asyncua
    re-creates it after a reconnection on a new session) is the value again, never stored: it is sent."""
    buffer = Buffer(tmp_path / "b.db", max_messages=10, drop_oldest=False)
    for _ in range(10):  # the broker is away and the buffer full
        buffer.add("fleet/acme/press-7/events", lambda seq: b"{}")
    variables = len(mapping.load(MAP).variables)

    async def scenario() -> None:
        publisher = Publisher(endpoint=MqttEndpoint("mqtt://127.0.0.1:1"), client_id="unused", buffer=buffer)
        # The default 10 s request timeout ran out on recreate's CreateMonitoredItems in a loaded clean-clone
        # CI (c84116b, 1 of 2,912 tests failed); what is tested here is what gets sent, not how soon.
        access = bridge.ServerAccess(endpoint=machine.endpoint, timeout_s=LOADED_TIMEOUT_S)
        client = await connection.connect(access)
        try:
            before = values_notified()
            await subscribing.subscribe(client, mapping.load(MAP), buffer, publisher)
            initial = lambda: values_notified() - before >= variables  # noqa: E731
            await until(initial, "the initial values")
            await asyncio.sleep(0.5)  # the translator buffers a publish's values on the loop's next turn
            assert not readings(buffer, "spindle_temp_c"), "the full buffer took a value"
            buffer.delete([row for row, _, _ in buffer.pending(0, 100)])  # the broker is back and took it
            (subscription,) = client._subscriptions
            await subscription.recreate()  # as asyncua's reconnection does when the old session is gone
            await until(
                lambda: bool(readings(buffer, "spindle_temp_c")), "the value sent after the re-creation"
            )
        finally:
            await client.disconnect()

    asyncio.run(scenario())
    assert readings(buffer, "spindle_temp_c"), "the node's value, never stored, was skipped as already sent"
