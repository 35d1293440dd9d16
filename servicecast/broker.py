"""The embedded amqtt broker (MQTT 3.1.1) for the demo and tests: no install, one thread."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

from amqtt.broker import Broker

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedBroker:
    """An amqtt broker on 127.0.0.1 running in its own event-loop thread."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._loop = asyncio.new_event_loop()
        self._broker: Broker | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="amqtt-broker", daemon=True)

    @property
    def url(self) -> str:
        """`mqtt://127.0.0.1:PORT` for SERVICECAST_MQTT_URL."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> EmbeddedBroker:
        """Start listening; returns once the port accepts connections."""
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._thread.start()
        self._broker = asyncio.run_coroutine_threadsafe(self._create(config), self._loop).result(timeout=30)
        asyncio.run_coroutine_threadsafe(self._broker.start(), self._loop).result(timeout=30)
        log.info("embedded amqtt broker listening on %s", self.url)
        return self

    async def _create(self, config: dict) -> Broker:
        # On the broker's own loop: amqtt makes futures on the current loop, and a thread that once ran
        # asyncio.run() has none left.
        return Broker(config, loop=self._loop)

    def stop(self) -> None:
        """Shut the broker down, end its thread and close its loop (once; a second stop does nothing)."""
        if self._loop.is_closed():
            return
        if self._broker is not None:
            # amqtt reports its own cancelled tasks as errors while shutting down; they are not ours.
            logging.getLogger("amqtt").setLevel(logging.CRITICAL)
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(timeout=30)
            asyncio.run_coroutine_threadsafe(_cancel_leftovers(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


async def _cancel_leftovers() -> None:
    """Cancel tasks amqtt leaves behind at shutdown, so the loop closes without 'Task was destroyed'."""
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
