"""The demo stopped: its OPC UA press leaves no thread, task, open loop, listening port or buffer behind."""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleet.settings import Settings
from servicecast import demo, demo_fleet
from servicecast.demo_opcua import DemoOpcUaMachine
from tests.ingest.support import wait_until


def _loops() -> list[asyncio.AbstractEventLoop]:
    return [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]


@contextmanager
def _nothing_left(presses: list[DemoOpcUaMachine]) -> Iterator[None]:
    """After the block: every thread it started has ended, every loop it made is closed with no task pending,
    and each press's OPC UA port refuses connections and its buffer's folder is gone."""
    threads, loops = set(threading.enumerate()), {id(loop) for loop in _loops()}
    yield
    assert presses, "no press was started"
    gc.collect()
    assert [t.name for t in threading.enumerate() if t not in threads and t.is_alive()] == []
    new = [loop for loop in _loops() if id(loop) not in loops]
    assert [repr(loop) for loop in new if not loop.is_closed()] == []
    pending = [
        task.get_coro().__qualname__
        for task in gc.get_objects()
        if isinstance(task, asyncio.Task) and not task.done() and task.get_loop() in new
    ]
    assert pending == []
    for press in presses:
        with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.connect(("127.0.0.1", press.server.port))
        assert not Path(press._dir.name).exists()


class _Recorded(DemoOpcUaMachine):
    started: list[DemoOpcUaMachine] = []

    def start(self) -> DemoOpcUaMachine:
        self.started.append(self)
        return super().start()


def test_a_ctrl_c_while_the_demo_publishes_stops_its_opcua_press_at_once(
    mosquitto, sqlite_engine, monkeypatch
):
    # Ctrl-C (or SIGTERM, see below) lands while the fleet's live hours are published and the press works
    # its shift: the press was never stopped, its bridge went on reconnecting to a broker gone, its server
    # listened and its threads ran until the process ended.
    presses: list[DemoOpcUaMachine] = []
    monkeypatch.setattr(_Recorded, "started", presses)
    monkeypatch.setattr(demo_fleet, "DemoOpcUaMachine", _Recorded)

    def interrupted(*_args: object) -> None:
        wait_until(lambda: presses[0].server.changes, 60, "the press's first change")
        raise KeyboardInterrupt

    monkeypatch.setattr(demo_fleet, "_publish", interrupted)
    settings = Settings(
        mqtt_url=mosquitto.url, demo_machines=3, demo_days=0.25, demo_live_hours=2, ingest_auto_register=True
    )
    fleet = demo_fleet.plan(settings, now=datetime(2026, 12, 7, 9, tzinfo=UTC))
    with _nothing_left(presses), pytest.raises(KeyboardInterrupt):
        demo_fleet.publish_live(fleet, settings, sqlite_engine)
    assert len(presses[0].server.changes) < 3 * presses[0].steps  # stopped at once, not after its shift


def test_the_press_stopped_after_its_shift_closes_its_loop(mosquitto, capsys):
    presses: list[DemoOpcUaMachine] = []
    with _nothing_left(presses):
        with DemoOpcUaMachine(mosquitto.url, "5", steps=4) as press:
            presses.append(press)
    said = capsys.readouterr().out
    assert "12 value changes and 2 alarm events over MQTT" in said and "unsent" not in said


def test_a_ctrl_c_while_the_press_waits_for_the_broker_still_stops_it(mosquitto):
    # The demo's `make demo` run: Ctrl-C landed while the press's stop waited for its last messages to reach
    # the broker, and the rest of the stop never ran.
    presses: list[DemoOpcUaMachine] = []

    def interrupted() -> bool:
        raise KeyboardInterrupt

    with _nothing_left(presses), pytest.raises(KeyboardInterrupt):
        with DemoOpcUaMachine(mosquitto.url, "5", steps=4) as press:
            presses.append(press)
            press._all_buffered = interrupted


def test_sigterm_stops_the_demo_as_ctrl_c_does():
    before = signal.getsignal(signal.SIGTERM)
    with demo.sigterm_as_ctrl_c(), pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before
