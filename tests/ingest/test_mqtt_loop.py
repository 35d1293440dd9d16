"""Stopping paho's network thread: never an error, even when the thread ends while it is being stopped."""

from __future__ import annotations

import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from fleet import mqtt_loop


def _connected(url: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"loop-{threading.get_ident()}")
    up = threading.Event()
    client.on_connect = lambda *_: up.set()
    host, port = url.removeprefix("mqtt://").split(":")
    client.connect_async(host, int(port))
    client.loop_start()
    assert up.wait(10), "no connection"
    return client


def test_a_network_thread_that_ends_between_the_stops_reads_stops_without_an_error(mosquitto) -> None:
    # paho's loop_stop read `_thread`, then the thread ended (setting it to None, as after a disconnect), then
    # it read `_thread` again to join it: AttributeError. The trace disconnects after the first read.
    client = _connected(mosquitto.url)
    network = client._thread
    stops = {mqtt_loop.stop.__code__, mqtt.Client.loop_stop.__code__}  # ours, and paho's if ours calls it
    lines: dict[object, int] = {}

    def tracer(frame, event, arg):
        if event == "call":
            return tracer if frame.f_code in stops else None
        if event == "line":
            lines[frame] = lines.get(frame, 0) + 1
            if lines[frame] == 2 and network.is_alive():  # `_thread` read once; the thread ends here
                client.disconnect()
                network.join(10)
        return tracer

    sys.settrace(tracer)
    try:
        mqtt_loop.stop(client)
    finally:
        sys.settrace(None)
    assert not network.is_alive() and client._thread is None


def test_a_running_network_thread_is_stopped_and_one_never_started_is_left_alone(mosquitto) -> None:
    client = _connected(mosquitto.url)
    network = client._thread
    mqtt_loop.stop(client)
    assert not network.is_alive()
    mqtt_loop.stop(mqtt.Client(CallbackAPIVersion.VERSION2))  # no thread: nothing to do


def test_the_network_thread_stops_itself_from_a_callback(mosquitto) -> None:
    client = _connected(mosquitto.url)
    network = client._thread
    stopped = threading.Event()
    client.on_message = lambda *_: (mqtt_loop.stop(client), stopped.set())
    client.subscribe("loop/self", qos=1)
    client.publish("loop/self", b"x", qos=1)
    assert stopped.wait(10), "the callback did not return"
    network.join(10)
    assert not network.is_alive()
    client.disconnect()
