"""paho's network thread stopped without the race in its own `loop_stop` (paho.mqtt.python#872)."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt


def stop(client: mqtt.Client) -> None:
    """Stop the client's network thread and wait for it, as `loop_stop` does, reading the thread once.

    paho's `loop_stop` reads `_thread` twice: the thread sets it to None as it ends (after a disconnect it
    ends by itself), and between the two reads that raised AttributeError from a clean close.
    """
    thread = client._thread  # paho-mqtt 2.x (pinned <3) internal, as loop_stop reads it
    if thread is None:
        return
    client._thread_terminate = True
    if thread is not threading.current_thread():
        thread.join()
