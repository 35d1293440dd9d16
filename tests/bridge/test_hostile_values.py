"""A machine's OPC UA server sending values it should not: the bridge refuses them and keeps the others."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from asyncua import ua
from prometheus_client import REGISTRY

from fleet.contract import format_ts
from fleet.settings import MqttEndpoint
from ingest.opcua import asyncua_log, bridge, connection, mapping, subscribing
from ingest.opcua.buffer import Buffer
from ingest.opcua.publisher import Publisher
from simulators.opcua_machine import MAP, MachineServer
from tests import services
from tests.bridge.support import LOADED_TIMEOUT_S, until, values_notified


@pytest.fixture
def machine() -> Iterator[MachineServer]:
    """The example press on a free port."""
    server = MachineServer(port=services.free_port()).start()
    yield server
    server.stop()


def write(machine: MachineServer, sensor: str, value: ua.DataValue) -> int:
    """Set one of the press's monitoring variables to this data value, on the server's own loop; 1 value."""
    node, _ = machine.variables[sensor]
    machine._call(node.write_value(value))
    return 1


def readings(buffer: Buffer, sensor: str) -> list[tuple[str, object]]:
    """(ts, value) of every buffered telemetry message carrying this sensor."""
    bodies = [orjson.loads(payload) for _, topic, payload in buffer.pending(0, 1000) if "telemetry" in topic]
    return [(b["ts"], b["readings"][sensor]) for b in bodies if sensor in b["readings"]]


async def bridged(machine: MachineServer, buffer: Buffer, changes) -> None:  # noqa: ANN001
    """Subscribe as the bridge does, then make each change (a callable returning how many values it wrote)
    once every value before it has reached the bridge: one publish each, the last one in before the end."""
    publisher = Publisher(endpoint=MqttEndpoint("mqtt://127.0.0.1:1"), client_id="unused", buffer=buffer)
    the_map = mapping.load(MAP)
    # The bridge's own connect: a plain Client's 1 s health probe dropped a loaded machine's server, and a
    # loaded CI's requests took past the default 10 s (test_sent_values).
    client = await connection.connect(
        bridge.ServerAccess(endpoint=machine.endpoint, timeout_s=LOADED_TIMEOUT_S)
    )

    async def notified(count: float) -> None:
        await until(lambda: values_notified() >= count, f"{count:g} value notifications")

    try:
        expected = values_notified() + len(the_map.variables)  # each variable's initial value
        await subscribing.subscribe(client, the_map, buffer, publisher)
        for change in changes:
            await notified(expected)
            expected += await asyncio.to_thread(change)
        await notified(expected)  # the translator buffers it on the loop's next turn, within the goodbye
    finally:
        await client.disconnect()


def at(ts: datetime, value: float) -> ua.DataValue:
    return ua.DataValue(ua.Variant(value, ua.VariantType.Double), SourceTimestamp=ts)


@pytest.mark.expect_logged_errors  # the refusal of the value from the future
def test_a_value_from_the_future_does_not_silence_its_node(machine: MachineServer, tmp_path) -> None:
    buffer = Buffer(tmp_path / "b.db", max_messages=1000)
    future = datetime(2099, 1, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    asyncio.run(
        bridged(
            machine,
            buffer,
            [
                lambda: write(machine, "spindle_temp_c", at(future, 99.0)),
                lambda: write(machine, "spindle_temp_c", at(now + timedelta(seconds=1), 41.0)),
                lambda: write(machine, "spindle_temp_c", at(now + timedelta(seconds=2), 42.0)),
            ],
        )
    )
    values = [v for _, v in readings(buffer, "spindle_temp_c")]
    assert 99.0 not in values  # the contract would quarantine it: refused at the edge
    assert values[-2:] == [41.0, 42.0]


def test_values_whose_status_is_bad_or_uncertain_are_dropped_counted_and_logged_once(
    machine: MachineServer, tmp_path, caplog
) -> None:
    """The contract has no quality field: a Bad or Uncertain value is not sent, as if it were a good one."""
    buffer = Buffer(tmp_path / "b.db", max_messages=1000)
    now = datetime.now(UTC)
    statuses = [ua.StatusCodes.BadSensorFailure, *[ua.StatusCodes.UncertainLastUsableValue] * 2]
    # An Uncertain code with its limit bits set (Low) is counted under its plain name.
    statuses.append(ua.StatusCodes.UncertainLastUsableValue | 0x100)
    before = {s: _dropped(s) for s in ("BadSensorFailure", "UncertainLastUsableValue")}

    def not_good(i: int, status: int) -> ua.DataValue:
        value = ua.Variant(900.0 + i, ua.VariantType.Double)
        return ua.DataValue(
            value, StatusCode=ua.StatusCode(status), SourceTimestamp=now + timedelta(seconds=i)
        )

    changes = [
        lambda i=i, s=s: write(machine, "spindle_temp_c", not_good(i, s)) for i, s in enumerate(statuses)
    ]
    good = lambda: write(machine, "spindle_temp_c", at(now + timedelta(seconds=9), 42.0))  # noqa: E731
    with caplog.at_level("WARNING", logger="ingest.opcua.bridge"):
        asyncio.run(bridged(machine, buffer, [*changes, good]))
    sent = readings(buffer, "spindle_temp_c")
    assert [v for _, v in sent][-1] == 42.0
    assert not [v for _, v in sent if v is None or v >= 900.0], "a value that is not Good was sent"
    assert _dropped("BadSensorFailure") - before["BadSensorFailure"] == 1
    assert _dropped("UncertainLastUsableValue") - before["UncertainLastUsableValue"] == 3
    logged = [r.getMessage() for r in caplog.records if "status" in r.getMessage()]
    assert len(logged) == 2, logged  # once per node and status
    assert any("UncertainLastUsableValue" in line and "spindle_temp_c" in line for line in logged)


def _dropped(status: str) -> float:
    return REGISTRY.get_sample_value("servicecast_bridge_not_good_values_total", {"status": status}) or 0.0


class Forwarder:
    """A port in front of an OPC UA server; `switch` drops every connection and sends new ones to another
    server, as a machine restarted behind its address would look to a client (None: closes them, as one
    switched off would); `delay_s` holds back each chunk each way, as a slow network would."""

    def __init__(self, target: int | None) -> None:
        self.target = target
        self.delay_s = 0.0
        self.writers: list[asyncio.StreamWriter] = []
        self.forwarding: set[asyncio.Task] = set()

    async def start(self) -> str:
        """Listen; the endpoint a client connects to."""
        self.server = await asyncio.start_server(self._forward, "127.0.0.1", 0)
        return f"opc.tcp://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        """Stop listening and end every connection."""
        self.server.close()
        self.switch(None)
        if self.forwarding:
            await asyncio.wait(self.forwarding)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.forwarding.add(asyncio.current_task())
        if self.target is None:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def switch(self, target: int | None) -> None:
        """Send new connections to `target`, and end the current ones."""
        self.target = target
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        sending = asyncio.ensure_future(_send(chunks, writer))
        try:
            while data := await reader.read(65536):
                chunks.put_nowait((loop.time() + self.delay_s, data))  # each due `delay_s` after it came
        except OSError:
            pass
        finally:
            chunks.put_nowait(None)
            await sending
            writer.close()


async def _send(chunks: asyncio.Queue[tuple[float, bytes] | None], writer: asyncio.StreamWriter) -> None:
    """Write each chunk at its time, in order, until None; a closed connection drops the rest."""
    loop = asyncio.get_running_loop()
    try:
        while (chunk := await chunks.get()) is not None:
            due, data = chunk
            await asyncio.sleep(max(0.0, due - loop.time()))
            writer.write(data)
            await writer.drain()
    except OSError:
        while await chunks.get() is not None:
            pass


async def until_sent(buffer: Buffer, *, tries: int) -> None:
    """Wait (0.5 s a try) until the buffer holds the identification, buffered once the bridge has subscribed
    to everything, and a spindle temperature."""
    for _ in range(tries):
        identified = any("events" in topic for _, topic, _ in buffer.pending(0, 1000))
        if identified and readings(buffer, "spindle_temp_c"):
            return
        await asyncio.sleep(0.5)


async def step_until_sent(server: MachineServer, buffer: Buffer, sent: int, *, tries: int = 120) -> None:
    """Change the machine every 0.5 s until the buffer holds more than `sent` spindle temperatures (60 s at
    most unless told: a reconnection on a loaded machine takes past 10-15 s)."""
    for _ in range(tries):
        await asyncio.to_thread(server.step)
        await asyncio.sleep(0.5)
        if len(readings(buffer, "spindle_temp_c")) > sent:
            return


def test_a_server_restarted_with_its_namespaces_renumbered_is_bridged_again(tmp_path) -> None:
    """asyncua re-creates the subscription with the old `ns=` indexes: every node unknown, nothing arrives."""
    buffer = Buffer(tmp_path / "b.db", max_messages=1000)
    before = MachineServer(port=services.free_port()).start()
    after = MachineServer(port=services.free_port(), other_namespaces=("urn:another:vendor",)).start()
    publisher = Publisher(endpoint=MqttEndpoint("mqtt://127.0.0.1:1"), client_id="unused", buffer=buffer)

    async def scenario() -> None:
        forwarder = Forwarder(before.port)
        access = bridge.ServerAccess(endpoint=await forwarder.start())
        running = asyncio.create_task(
            bridge.run(access=access, mapping=mapping.load(MAP), buffer=buffer, publisher=publisher)
        )
        await until_sent(buffer, tries=120)  # a fixed 2 s was too short on a loaded machine
        forwarder.switch(after.port)
        await step_until_sent(after, buffer, 1)
        running.cancel()
        await asyncio.wait({running})
        forwarder.server.close()

    try:
        asyncio.run(scenario())
    finally:
        before.stop()
        after.stop()
    # The first server's initial value, then the renumbered server's changes (all above it).
    first, *later = [v for _, v in readings(buffer, "spindle_temp_c")]
    assert first == 40.0 and later and min(later) > 40.0


def test_a_source_time_of_1601_is_no_time_and_the_server_time_is_used(
    machine: MachineServer, tmp_path
) -> None:
    """OPC UA's zero time (1601) means the server has no source time: it was refused as before 2000."""
    buffer = Buffer(tmp_path / "b.db", max_messages=1000)
    zero = datetime(1601, 1, 1, tzinfo=UTC)
    asyncio.run(bridged(machine, buffer, [lambda: write(machine, "spindle_temp_c", at(zero, 43.0))]))
    (ts, _), *_ = [(ts, v) for ts, v in readings(buffer, "spindle_temp_c") if v == 43.0]
    assert ts.startswith(str(datetime.now(UTC).year))


def test_a_server_gone_for_a_while_and_back_is_bridged_again_without_a_traceback_a_second(
    tmp_path, caplog
) -> None:
    """While the machine is off, asyncua's publish loop logged a traceback every second (a night: ~40,000)."""
    buffer = Buffer(tmp_path / "b.db", max_messages=1000)
    port = services.free_port()
    first = MachineServer(port=port).start()
    servers = [first]
    publisher = Publisher(endpoint=MqttEndpoint("mqtt://127.0.0.1:1"), client_id="unused", buffer=buffer)

    async def scenario() -> None:
        access = bridge.ServerAccess(endpoint=first.endpoint)
        running = asyncio.create_task(
            bridge.run(access=access, mapping=mapping.load(MAP), buffer=buffer, publisher=publisher)
        )
        await until_sent(buffer, tries=120)  # a fixed 2 s was too short on a loaded machine
        await asyncio.to_thread(first.stop)
        await asyncio.sleep(5)  # the machine is off
        second = await asyncio.to_thread(MachineServer(port=port, serial="SN-4712").start)
        servers.append(second)
        await step_until_sent(second, buffer, 2, tries=60)
        running.cancel()
        await asyncio.wait({running})

    try:
        with caplog.at_level("INFO", logger="asyncua"):
            asyncio.run(scenario())
    finally:
        servers[-1].stop()
    first_value, *after = [v for _, v in readings(buffer, "spindle_temp_c")]
    assert first_value == 40.0 and len(after) >= 2, "the server that came back is bridged"
    assert any("Reconnect attempt failed" in r.getMessage() for r in caplog.records)
    crashed = [r for r in caplog.records if "Publish iteration crashed" in r.getMessage()]
    assert not crashed, f"{len(crashed)} tracebacks while the server was away"


def test_a_server_stops_though_the_bridge_reconnects_at_once(tmp_path) -> None:
    """asyncua's stop drops its clients before it stops listening: the bridge's client got back in, and the
    stop (every fixture's, the demo's) hung until `MachineServer._call` gave up after 30 s, 1 time in 2."""
    buffer = Buffer(tmp_path / "b.db", max_messages=1000)
    publisher = Publisher(endpoint=MqttEndpoint("mqtt://127.0.0.1:1"), client_id="unused", buffer=buffer)

    async def stop_while_bridged(server: MachineServer) -> None:
        access = bridge.ServerAccess(endpoint=server.endpoint, timeout_s=LOADED_TIMEOUT_S)
        client = await connection.connect(access)
        try:
            await subscribing.subscribe(client, mapping.load(MAP), buffer, publisher)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(server.stop)  # raised TimeoutError
        finally:
            await connection.goodbye(client, server.endpoint)

    for _ in range(4):
        asyncio.run(stop_while_bridged(MachineServer(port=services.free_port()).start()))


@pytest.mark.expect_logged_errors  # the refusal of the values from the future
def test_a_node_that_keeps_sending_bad_values_is_logged_once_per_reason_and_counted_each_time(
    machine: MachineServer, tmp_path, caplog
) -> None:
    """A node stuck on NaN, or a server clock far ahead, logged a line per value: ~170,000 a day each."""
    buffer = Buffer(tmp_path / "b.db", max_messages=1000)
    now, future = datetime.now(UTC), datetime(2099, 1, 1, tzinfo=UTC)
    before = {reason: _skipped(reason) for reason in ("not_a_number", "invalid")}

    # Double variants all (asyncua's server checks the type): not a number, infinite, an array for a scalar.
    odd = [float("nan"), float("inf"), [1.0, 2.0]]
    changes = [
        *[
            lambda i=i, v=v: write(machine, "vibration_mm_s", at(now + timedelta(seconds=i), v))
            for i, v in enumerate(odd)
        ],
        *[
            lambda i=i: write(machine, "spindle_temp_c", at(future + timedelta(seconds=i), 50.0 + i))
            for i in range(3)
        ],
    ]
    with caplog.at_level("WARNING", logger="ingest.opcua.bridge"):
        asyncio.run(bridged(machine, buffer, changes))
    assert _skipped("not_a_number") - before["not_a_number"] == 3
    assert _skipped("invalid") - before["invalid"] == 3
    said = [r.getMessage() for r in caplog.records if r.name == bridge.log.name]
    assert len([line for line in said if "not a number" in line]) == 1, said
    assert len([line for line in said if "would be quarantined" in line]) == 1, said


def _skipped(reason: str) -> float:
    return REGISTRY.get_sample_value("servicecast_bridge_skipped_values_total", {"reason": reason}) or 0.0


def test_values_after_the_server_clock_stepped_back_are_sent_with_their_times_and_logged_once_per_episode(
    machine: MachineServer, tmp_path, caplog
) -> None:
    """An NTP correction or a PLC clock reset: the values after it were skipped as sent already, silently."""
    buffer = Buffer(tmp_path / "b.db", max_messages=1000)
    now = datetime.now(UTC)
    before = _stepped_back()

    def spindle(seconds: float, value: float):  # noqa: ANN202
        return lambda: write(machine, "spindle_temp_c", at(now + timedelta(seconds=seconds), value))

    changes = [
        spindle(1, 41.0),
        spindle(2, 42.0),
        spindle(-60, 43.0),  # the clock steps back a minute
        spindle(-59, 44.0),
        lambda: write(machine, "vibration_mm_s", at(now - timedelta(seconds=58), 2.5)),  # the same episode
        spindle(3, 45.0),  # past the latest time sent before the step: the episode ends
        spindle(-30, 46.0),  # a second step back, a second episode
    ]
    with caplog.at_level("INFO", logger="ingest.opcua.bridge"):
        asyncio.run(bridged(machine, buffer, changes))
    sent = readings(buffer, "spindle_temp_c")
    assert [v for _, v in sent][-6:] == [41.0, 42.0, 43.0, 44.0, 45.0, 46.0]
    assert sent[-4][0] == format_ts(now - timedelta(seconds=60)), "sent with its own source time"
    assert readings(buffer, "vibration_mm_s")[-1] == (format_ts(now - timedelta(seconds=58)), 2.5)
    assert _stepped_back() - before == 3  # 43.0, the vibration's 2.5, 46.0
    said = [r.getMessage() for r in caplog.records if r.name == bridge.log.name]
    stepped = [line for line in said if "clock stepped back" in line]
    assert len(stepped) == 2 and "spindle_temp_c" in stepped[0] and "again" in " ".join(said), said
    # A restart's initial values repeat the last ones sent (their times older than others sent): not again.
    asyncio.run(bridged(machine, buffer, [lambda: write(machine, "spindle_speed_rpm", at(now, 1300.0))]))
    assert readings(buffer, "spindle_temp_c") == sent
    assert readings(buffer, "vibration_mm_s")[-1][1] == 2.5


def _stepped_back() -> float:
    return REGISTRY.get_sample_value("servicecast_bridge_source_time_steps_back_total") or 0.0


def test_changes_that_share_their_source_time_are_all_sent_once(machine: MachineServer, tmp_path) -> None:
    """A server that stamps whole seconds, or whose clock stands still: a change carrying its node's last
    source time was skipped as sent already, silently."""
    buffer = Buffer(tmp_path / "b.db", max_messages=1000)
    second = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)

    def spindle(*values: float):  # noqa: ANN202
        return lambda: sum(write(machine, "spindle_temp_c", at(second, v)) for v in values)

    # The last two in one publish, as two changes within one publishing interval arrive.
    asyncio.run(bridged(machine, buffer, [spindle(41.0), spindle(41.5), spindle(42.0), spindle(43.0, 43.5)]))
    sent = readings(buffer, "spindle_temp_c")
    assert sent[-5:] == [(format_ts(second), v) for v in (41.0, 41.5, 42.0, 43.0, 43.5)]
    # A restart's initial value repeats the last change, time and value: not sent again.
    asyncio.run(bridged(machine, buffer, [lambda: write(machine, "spindle_speed_rpm", at(second, 1300.0))]))
    assert readings(buffer, "spindle_temp_c") == sent
    assert readings(buffer, "spindle_speed_rpm")[-1][1] == 1300.0


def test_a_publish_refused_by_a_server_back_from_a_restart_is_one_line_not_a_traceback() -> None:
    """A server back from a restart answers the first publish on the forgotten session BadUserAccessDenied
    before asyncua re-creates the session; asyncua logged that as a traceback (seen once in a CI run)."""
    try:
        raise ua.UaStatusCodeError(ua.StatusCodes.BadUserAccessDenied)
    except ua.UaStatusCodeError:
        refused = logging.LogRecord(
            "asyncua.client.ua_session.UaSession",
            logging.ERROR,
            __file__,
            1,
            "Publish iteration crashed; retrying in 1s",
            (),
            sys.exc_info(),
        )
    try:
        raise ConnectionResetError("gone")
    except ConnectionResetError:
        away = logging.LogRecord(
            "asyncua.client.ua_session.UaSession",
            logging.ERROR,
            __file__,
            1,
            "Publish iteration crashed; retrying in 1s",
            (),
            sys.exc_info(),
        )
    noise = asyncua_log.ServerAwayNoise()
    assert noise.filter(refused)
    assert refused.exc_info is None and refused.levelno == logging.WARNING
    assert refused.getMessage() == (
        "the OPC UA server refused a publish request (BadUserAccessDenied); asyncua retries in 1 s"
    )
    assert not noise.filter(away)


def logged_with(error: Exception, logger: str, msg: str, *args: object) -> logging.LogRecord:
    """The record asyncua logs with `logger.exception(msg, *args)` while handling `error`."""
    try:
        raise error
    except Exception:
        return logging.LogRecord(logger, logging.ERROR, __file__, 1, msg, args, sys.exc_info())


def test_a_connection_lost_under_asyncuas_stale_subscription_watchdog_is_one_line_not_a_traceback() -> None:
    """asyncua escalates a re-creation of a stale subscription that lost the connection to a reconnection,
    and logged the loss as a traceback: the one that failed a CI run of the bridge's "drop" test."""
    escalated = "Subscription %s recreate failed; escalating to reconnect"
    lost = logged_with(ConnectionError("client is disconnected"), "asyncua.client.client", escalated, 78)
    other = logged_with(ValueError("a bug"), "asyncua.client.client", escalated, 78)
    noise = asyncua_log.ServerAwayNoise()
    assert noise.filter(lost) and noise.filter(other)
    assert lost.exc_info is None and lost.levelno == logging.WARNING
    assert lost.getMessage() == (
        "lost the OPC UA server re-creating a stale subscription (ConnectionError: client is disconnected); "
        "asyncua reconnects"
    )
    assert other.exc_info is not None and other.levelno == logging.ERROR, "anything else keeps its traceback"
    assert "asyncua.client.client" in asyncua_log.NOISY_LOGGERS, "the bridge quiets the watchdog's logger"


def test_a_huge_value_that_is_not_a_number_is_logged_bounded(
    machine: MachineServer, tmp_path, caplog
) -> None:
    """An array of 50,000 Doubles on a scalar variable: its whole repr (~450 KB) was the warning line."""
    buffer = Buffer(tmp_path / "b.db", max_messages=1000)
    huge = [float(i) for i in range(50_000)]
    changes = [lambda: write(machine, "vibration_mm_s", at(datetime.now(UTC), huge))]
    with caplog.at_level("WARNING", logger="ingest.opcua.bridge"):
        asyncio.run(bridged(machine, buffer, changes))
    said = [r.getMessage() for r in caplog.records if "not a number" in r.getMessage()]
    assert len(said) == 1 and len(said[0]) < 600, (len(said), [len(line) for line in said])
    assert "[0.0, 1.0, 2.0" in said[0] and "characters)" in said[0]
