"""The bridge's publisher counts what the broker acknowledged (what the demo waits for before it reports)."""

from __future__ import annotations

import asyncio

import pytest

from fleet.settings import MqttEndpoint
from ingest.opcua.buffer import Buffer
from ingest.opcua.publisher import Publisher
from tests import services


@pytest.mark.mosquitto
def test_the_publisher_counts_every_message_the_broker_acknowledged(
    mosquitto: services.Mosquitto, tmp_path
) -> None:
    buffer = Buffer(tmp_path / "buffer.db", max_messages=100)
    for _ in range(25):
        buffer.add("fleet/acme/press-7/telemetry", lambda seq: f'{{"seq": {seq}}}'.encode())
    publisher = Publisher(
        endpoint=MqttEndpoint(f"mqtt://127.0.0.1:{mosquitto.port}"), client_id="counted", buffer=buffer
    )

    async def until_sent() -> None:
        task = asyncio.create_task(publisher.run())
        for _ in range(400):
            if not buffer.count:
                break
            await asyncio.sleep(0.05)
        publisher.stop(within=1.0)
        await asyncio.wait({task}, timeout=5)
        if not task.done():
            task.cancel()

    try:
        asyncio.run(until_sent())
        assert buffer.count == 0
        assert publisher.published == 25
    finally:
        buffer.close()
