"""The Sparkplug B host against a real Mosquitto and a pysparkplug-encoded edge node (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import sys

import paho.mqtt.client as mqtt
import pysparkplug as spb
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import select

from fleet import mqtt_loop, sparkplug_state
from fleet.settings import MqttEndpoint
from fleet.tables import Machine, MachineEvent, Quarantine, SparkplugNode, Telemetry
from ingest.inbox import Inbox
from ingest.sparkplug.host import REBIRTHS, SparkplugSource
from ingest.sparkplug.rows import key
from tests.ingest.support import LOADED_S, quarantine_reasons, register_fleet, wait_until
from tests.sparkplug.support import GROUP, MAP, NODE, T0, EdgeNode, HostProcess, in_process_host

pytestmark = pytest.mark.mosquitto
REBIRTH_INTERVAL_S = 3600.0


def rows(engine) -> list[tuple[int, dict, dict]]:
    """(seq, readings, extra) of m-000's telemetry, in seq order."""
    query = select(Telemetry.seq, Telemetry.readings, Telemetry.extra).join(Machine).order_by(Telemetry.seq)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query.where(Machine.code == "m-000"))]


@pytest.fixture
def fleet(engine):
    register_fleet(engine, "acme", ["m-000"])
    return engine


@pytest.fixture
def edge(mosquitto):
    node = EdgeNode(mosquitto.url)
    yield node
    node.close()


@pytest.fixture
def host(mosquitto, database_url, fleet):
    # The rebirth requests' interval is the host's clock: a test that counts one request over three gaps
    # must not see it run out, which the production minute could on a loaded machine.
    running = in_process_host(
        database_url, fleet, mosquitto.url, sparkplug_rebirth_interval_s=REBIRTH_INTERVAL_S
    )
    yield running
    running.stop()


def test_birth_then_data_by_alias_stored_under_the_mapped_machine_and_sensors(host, edge, fleet):
    edge.birth(T0)
    edge.data(T0 + 1000, 71.5, alarm=True)
    wait_until(lambda: len(rows(fleet)) == 2, LOADED_S, "the birth's values and the data")
    (birth_seq, birth, _), (data_seq, data, extra) = rows(fleet)
    assert birth == {"temperature_c": 60.0, "vibration_mm_s": 2.0}
    assert data == {"temperature_c": 71.5, "vibration_mm_s": 2.5}
    assert (birth_seq, data_seq) == (key(T0, 1), key(T0 + 1000, 2))
    assert extra["sparkplug"]["topic"] == "spBv1.0/plant1/DDATA/line4/press-7"
    with fleet.connect() as conn:
        assert list(conn.scalars(select(MachineEvent.code))) == ["E_OVERTEMP"]
    assert quarantine_reasons(fleet) == []
    assert edge.rebirth_requests() == 0


def test_seq_wraps_at_255_without_a_rebirth(host, edge, fleet):
    edge.birth(T0)
    for i in range(300):
        edge.data(T0 + 10 * (i + 1), 60.0 + i % 7)
    wait_until(lambda: len(rows(fleet)) == 301, LOADED_S, "all 301 rows")
    assert edge.rebirth_requests() == 0
    assert quarantine_reasons(fleet) == []


def test_a_gap_asks_for_exactly_one_rebirth_until_the_birth_arrives(host, edge, fleet):
    edge.birth(T0)
    edge.data(T0 + 10, 61.0)
    edge.seq += 5  # five messages lost before the broker
    for i in range(3):
        edge.data(T0 + 20 + i, 62.0)
    wait_until(lambda: len(rows(fleet)) == 5, LOADED_S, "rows of the data on both sides of the gap")
    wait_until(lambda: edge.rebirth_requests() >= 1, LOADED_S, "a rebirth request")
    edge.seq += 2  # a second gap before the rebirth: no second request
    edge.data(T0 + 40, 63.0)
    wait_until(lambda: len(rows(fleet)) == 6, LOADED_S, "the row after the second gap")
    assert edge.rebirth_requests() == 1
    edge.birth(T0 + 50)
    edge.seq += 3  # a gap after the rebirth is a new gap, but the last request is within the interval
    edge.data(T0 + 60, 64.0)
    wait_until(
        lambda: len(rows(fleet)) == 8, LOADED_S, "the rebirth's values and the row after the third gap"
    )
    assert edge.rebirth_requests() == 1  # SERVICECAST_SPARKPLUG_REBIRTH_INTERVAL_S (test_hostile_nodes: 0)


def test_a_node_clock_stepped_back_in_a_session_leaves_gaps_and_dead_devices_seen(host, edge, fleet):
    """The seq orders a session: every message after the step looked like a redelivery (its time not after
    the last), until the clock passed the old times again: no gap was seen, no device's death."""
    edge.birth(T0 + 60_000)
    edge.data(T0 + 60_010, 61.0)
    edge.data(T0, 62.0)  # the next message, after NTP set the clock a minute back
    edge.seq += 3  # three messages lost on the way
    edge.data(T0 + 10, 63.0)
    edge.device_death(T0 + 20)
    edge.data(T0 + 30, 64.0)  # of a dead device
    wait_until(lambda: quarantine_reasons(fleet) or len(rows(fleet)) == 5, LOADED_S, "the last data stored")
    assert sorted(r["temperature_c"] for _, r, _ in rows(fleet)) == [60.0, 61.0, 62.0, 63.0]
    assert quarantine_reasons(fleet) == ["sparkplug_no_birth"]
    wait_until(lambda: edge.rebirth_requests() >= 1, LOADED_S, "a rebirth request for the gap")
    assert edge.rebirth_requests() == 1  # the dead device's data asks no more before the next birth


def test_data_before_birth_is_quarantined_and_asks_for_a_rebirth(host, edge, fleet):
    edge.seq = 17
    edge.data(T0, 61.0)
    edge.data(T0 + 1, 61.0)
    wait_until(lambda: len(quarantine_reasons(fleet)) == 2, LOADED_S, "the data in quarantine")
    assert quarantine_reasons(fleet) == ["sparkplug_no_birth", "sparkplug_no_birth"]
    wait_until(lambda: edge.rebirth_requests() == 1, LOADED_S, "one rebirth request")
    assert rows(fleet) == []


def test_a_birth_without_a_bdseq_is_quarantined_and_its_node_stays_unborn_until_one_with_it(
    host, edge, fleet
):
    """Sparkplug B 3.0 requires a bdSeq in NBIRTH (tck-id-payloads-nbirth-bdseq): without one no NDEATH can
    name the session. Before, such a birth was taken and its node's data stored."""
    edge.bd_seq = None
    edge.birth(T0)  # NBIRTH, then its device's DBIRTH
    edge.ndata(T0 + 10, [spb.Metric(T0 + 10, "Node Control/Rebirth", spb.DataType.BOOLEAN, value=False)])
    edge.data(T0 + 20, 61.0)
    wait_until(
        lambda: len(quarantine_reasons(fleet)) == 4, LOADED_S, "the birth and what followed it in quarantine"
    )
    assert quarantine_reasons(fleet) == ["sparkplug_birth_without_bdseq"] + ["sparkplug_no_birth"] * 3
    with fleet.connect() as conn:
        assert conn.scalars(select(Quarantine.detail)).first() == (
            f"NBIRTH of {GROUP}/{NODE} without a bdSeq metric, which Sparkplug B requires: the node stays "
            "unborn (its data quarantined) until a birth with one"
        )
        assert not sparkplug_state.load(conn, "scada", [(GROUP, NODE)])[(GROUP, NODE)]["online"]
    wait_until(
        lambda: edge.rebirth_requests() == 1, LOADED_S, "a rebirth request, as for data before any birth"
    )
    assert rows(fleet) == []

    edge.bd_seq = 5
    edge.birth(T0 + 30)
    edge.data(T0 + 40, 62.0)
    wait_until(lambda: len(rows(fleet)) == 2, LOADED_S, "the birth with a bdSeq and its data")
    assert [r["temperature_c"] for _, r, _ in rows(fleet)] == [60.0, 62.0]
    assert len(quarantine_reasons(fleet)) == 4


def test_ndeath_with_a_stale_bdseq_is_ignored(host, edge, fleet):
    edge.bd_seq = 4
    edge.birth(T0)
    edge.death(3)  # the will of an earlier connection, delivered late
    edge.data(T0 + 10, 61.0)
    wait_until(lambda: len(rows(fleet)) == 2, LOADED_S, "data after the stale death")
    edge.death(4)
    edge.data(T0 + 20, 62.0)
    wait_until(
        lambda: quarantine_reasons(fleet) == ["sparkplug_no_birth"], LOADED_S, "data after the real death"
    )
    assert len(rows(fleet)) == 2


def test_an_ndeath_without_a_bdseq_is_quarantined_and_ends_no_session(host, edge, fleet):
    """Sparkplug asks the host to end a session only for the death whose bdSeq is its birth's: one without
    a bdSeq names no birth."""
    edge.bd_seq = 4
    edge.birth(T0)
    edge.death(None)  # names no birth: a will of another connection as much as of this one
    edge.data(T0 + 10, 61.0)
    edge.death(None)
    edge.data(T0 + 20, 62.0)

    def temperatures() -> list[float]:
        return [r["temperature_c"] for _, r, _ in rows(fleet)]

    wait_until(lambda: 62.0 in temperatures(), LOADED_S, "the last data (in order: all before it too)")
    assert temperatures() == [60.0, 61.0, 62.0]
    assert quarantine_reasons(fleet) == ["sparkplug_bad_payload"]  # the same raw death twice: kept once
    with fleet.connect() as conn:
        assert "without a bdSeq" in conn.scalars(select(Quarantine.detail)).first()
        assert sparkplug_state.load(conn, "scada", [(GROUP, NODE)])[(GROUP, NODE)]["online"]


def test_historical_and_live_values_of_one_millisecond_are_one_row_unless_of_the_same_metric(
    host, edge, fleet
):
    """Backfill and live values at one time in one message had one key and two rows: the second was
    quarantined as seq_conflict, though a row holds one time's readings and they were of different metrics."""
    edge.birth(T0)
    double = spb.DataType.DOUBLE
    edge.ddata(
        T0 + 20,
        [
            spb.Metric(T0 + 10, None, double, value=61.0, alias=10, is_historical=True),
            spb.Metric(T0 + 10, None, double, value=2.5, alias=11),
            spb.Metric(T0 + 20, None, double, value=62.0, alias=10),
            spb.Metric(T0 + 20, None, double, value=63.0, alias=10, is_historical=True),  # a second value
            spb.Metric(T0 + 20, None, double, value=62.0, alias=10),  # the same value again: nothing new
        ],
    )
    wait_until(lambda: quarantine_reasons(fleet), LOADED_S, "the message stored")
    (_, _, birth), (ten, at_ten, extra_ten), (twenty, at_twenty, extra_twenty) = rows(fleet)
    assert (at_ten, at_twenty) == ({"temperature_c": 61.0, "vibration_mm_s": 2.5}, {"temperature_c": 62.0})
    assert (ten, twenty) == (key(T0 + 10, 2), key(T0 + 20, 2))  # DDATA after NBIRTH 0, DBIRTH 1
    # The row says which of its values were backfill when it holds both kinds.
    assert extra_ten["sparkplug"]["historical"] == ["temperature_c"]
    assert (birth["sparkplug"]["historical"], extra_twenty["sparkplug"]["historical"]) == (False, False)
    assert quarantine_reasons(fleet) == ["seq_conflict"]
    with fleet.connect() as conn:
        kept = json.loads(conn.scalar(select(Quarantine.payload)))
    assert (kept["readings"], kept["sparkplug"]["historical"]) == ({"temperature_c": 63.0}, True)


def test_host_state_is_a_retained_qos1_json_birth_with_its_will(mosquitto, database_url, fleet):
    host = in_process_host(database_url, fleet, mosquitto.url, host_id="scada-2")
    edge = EdgeNode(mosquitto.url)
    try:
        wait_until(
            lambda: any(b'"online":true' in p for _, p, _ in edge.states), LOADED_S, "the online STATE"
        )
        topic, payload, retained = next(s for s in edge.states if b'"online":true' in s[1])
        assert topic == "spBv1.0/STATE/scada-2" and retained
        online = json.loads(payload)
        assert set(online) == {"online", "timestamp"} and type(online["timestamp"]) is int
        host.stop()
        wait_until(
            lambda: any(b'"online":false' in p for _, p, _ in edge.states), LOADED_S, "the offline STATE"
        )
        offline = json.loads(next(p for _, p, _ in edge.states if b'"online":false' in p))
        assert offline == {"online": False, "timestamp": online["timestamp"]}
    finally:
        edge.close()


def test_a_host_closed_while_it_connects_leaves_its_state_offline(mosquitto):
    # A close between on_connect marking the source connected and its online STATE published "offline"
    # first and "online" after it, with the same timestamp: the broker kept "online" for a host that was gone.
    # A short switch interval makes the threads interleave there often (about 1 close in 7 before the fix).
    hosts = [f"closing-{i}" for i in range(100)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for host_id in hosts:
            source = SparkplugSource(
                host_id=host_id,
                pending=list,
                endpoint=MqttEndpoint(mosquitto.url),
                inbox=Inbox(max_messages=100, max_bytes=2**20),
                client_id=f"sparkplug-{host_id}",
            )
            source.start()
            assert source.connected.wait(10), "the host did not connect"
            source.stop_receiving()
            source.close()
    finally:
        sys.setswitchinterval(interval)
    edge = EdgeNode(mosquitto.url)
    try:
        wait_until(lambda: len(edge.states) == len(hosts), LOADED_S, "every host's retained STATE")
        online = sorted(topic for topic, payload, _ in edge.states if json.loads(payload)["online"])
        assert online == [], f"{len(online)} of {len(hosts)} closed hosts are still online for the broker"
    finally:
        edge.close()


def test_a_host_closed_as_its_broker_goes_away_closes_without_an_error(mosquitto):
    # close() waited for its offline STATE whenever `connected` was set; paho raises RuntimeError from
    # wait_for_publish for a message it could not send, so a close racing the loss of the connection (the
    # flag is cleared by paho's thread only after the socket is gone) ended the process with a traceback.
    # The race's state is made here on purpose: the broker gone, the flag still set.
    source = SparkplugSource(
        host_id="going",
        pending=list,
        endpoint=MqttEndpoint(mosquitto.url),
        inbox=Inbox(max_messages=100, max_bytes=2**20),
        client_id="sparkplug-going",
    )
    source.start()
    assert source.connected.wait(10), "the host did not connect"
    source.stop_receiving()
    mosquitto.stop()
    wait_until(lambda: not source.connected.is_set(), LOADED_S, "the host to see its broker gone")
    source.connected.set()
    source.close()
    assert not source.client.is_connected()


def test_kill9_of_the_host_mid_stream_loses_and_duplicates_nothing(mosquitto, database_url, fleet, tmp_path):
    map_file = tmp_path / "map.yaml"
    map_file.write_text(yaml.safe_dump(MAP))
    host = HostProcess(tmp_path, database_url=database_url, mqtt_url=mosquitto.url, map_file=map_file)
    edge = EdgeNode(mosquitto.url)
    try:
        host.start()
        edge.birth(T0)
        total = 3000
        for i in range(total):
            edge.data(T0 + i + 1, 60.0 + i % 9)
            if i == 600:
                wait_until(lambda: len(rows(fleet)) > 200, LOADED_S, "rows before the kill")
                host.kill9()
        assert len(rows(fleet)) < total, "the kill came too late to test anything"
        host.start()
        wait_until(lambda: len(rows(fleet)) >= total + 1, 120, "every row after the restart")
        seqs = [seq for seq, _, _ in rows(fleet)]
        assert len(seqs) == len(set(seqs)) == total + 1
        assert quarantine_reasons(fleet) == []
        assert edge.rebirth_requests() == 0
    finally:
        host.stop()
        edge.close()


def states(edge: EdgeNode) -> list[dict]:
    """The STATE payloads the edge node has read, decoded."""
    return [json.loads(p) for _, p, _ in list(edge.states)]


def test_an_offline_state_on_the_hosts_id_while_it_runs_is_answered_online(mosquitto, database_url, fleet):
    """Another host run with our id that stopped, or a client abusing the topic: edge nodes would hold their
    data for a host that is here, so the host says online again, later (Sparkplug 3.0)."""
    host = in_process_host(database_url, fleet, mosquitto.url, host_id="scada-4")
    edge = EdgeNode(mosquitto.url)

    try:
        wait_until(lambda: len(states(edge)) == 1, LOADED_S, "the online STATE")
        later = states(edge)[0]["timestamp"] + 1000
        rogue = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rogue")
        endpoint = MqttEndpoint(mosquitto.url)
        rogue.connect(endpoint.host, endpoint.port)
        rogue.loop_start()
        offline = json.dumps({"online": False, "timestamp": later})
        rogue.publish("spBv1.0/STATE/scada-4", offline, qos=1, retain=True).wait_for_publish(10)
        rogue.disconnect()
        mqtt_loop.stop(rogue)
        wait_until(lambda: len(states(edge)) == 3, LOADED_S, "the host's answer to the offline STATE")
        assert [s["online"] for s in states(edge)] == [True, False, True]
        assert states(edge)[2]["timestamp"] > later
        newcomer = EdgeNode(mosquitto.url)  # what a node connecting now reads: the retained STATE
        try:
            wait_until(lambda: len(newcomer.states) == 1, LOADED_S, "the retained STATE")
            assert json.loads(newcomer.states[0][1]) == states(edge)[2] and newcomer.states[0][2]
        finally:
            newcomer.close()
    finally:
        host.stop()
        edge.close()


def take_over(url: str, client_id: str) -> None:
    """Connect with another client's id: the broker drops that client as if its network failed."""
    endpoint = MqttEndpoint(url)
    intruder = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    intruder.connect(endpoint.host, endpoint.port)
    intruder.loop_start()
    wait_until(intruder.is_connected, LOADED_S, "the intruder's connection")
    intruder.disconnect()
    mqtt_loop.stop(intruder)


def test_each_connection_has_a_new_state_timestamp_shared_by_its_birth_and_will(
    mosquitto, database_url, fleet
):
    host = in_process_host(database_url, fleet, mosquitto.url, host_id="scada-3")
    edge = EdgeNode(mosquitto.url)

    try:
        wait_until(lambda: len(states(edge)) == 1, LOADED_S, "the first online STATE")
        for expected in (3, 5):
            take_over(mosquitto.url, "sparkplug-scada-3")
            wait_until(lambda n=expected: len(states(edge)) >= n, LOADED_S, "offline, then online again")
        seen = states(edge)
        assert [s["online"] for s in seen] == [True, False, True, False, True]
        stamps = [s["timestamp"] for s in seen]
        # The will of each connection carries that connection's online timestamp; each connection a new one.
        assert stamps[0] == stamps[1] < stamps[2] == stamps[3] < stamps[4]
    finally:
        host.stop()
        edge.close()


def test_a_rebirth_committed_as_pending_is_sent_when_the_host_connects(mosquitto, database_url, fleet):
    """A crash between committing `rebirth_pending` and publishing the NCMD must not leave a node unasked."""
    state = {"online": True, "seq": 7, "ts": T0, "aliases": {}, "bd_seq": 0, "devices": {}}
    with fleet.begin() as conn:
        pending, done = {**state, "rebirth_pending": True}, {**state, "rebirth_pending": False}
        # line9 is in no map (taken out of it since, say): not asked.
        states = {(GROUP, NODE): pending, (GROUP, "line5"): done, (GROUP, "line9"): pending}
        sparkplug_state.save(conn, "scada", states)
    sent = REBIRTHS._value.get()
    edge = EdgeNode(mosquitto.url)
    host = in_process_host(database_url, fleet, mosquitto.url)
    try:
        wait_until(lambda: edge.rebirth_requests() == 1, LOADED_S, "the pending rebirth request")
        edge.birth(T0 + 10)
        edge.data(T0 + 20, 61.0)
        wait_until(lambda: len(rows(fleet)) == 2, LOADED_S, "the rebirth's values and data")
        assert edge.rebirth_requests() == 1
        assert REBIRTHS._value.get() - sent == 1  # none to line5 (no rebirth pending), none to line9
    finally:
        host.stop()
        edge.close()


def test_a_node_id_too_long_for_the_node_states_is_quarantined_and_the_stream_goes_on(host, edge, fleet):
    # On PostgreSQL its batch failed (value too long for varchar(128)) and the writer fell back to one
    # transaction per message, quarantining it as db_rejected; on SQLite its node state was stored.
    edge.birth(T0)
    birth = spb.NBirth(timestamp=T0, seq=0, metrics=(spb.Metric(T0, "bdSeq", spb.DataType.INT64, value=0),))
    edge._send(f"spBv1.0/{'g' * 129}/NBIRTH/{NODE}", birth.encode())
    edge.data(T0 + 1000, 71.5)
    wait_until(
        lambda: len(rows(fleet)) == 2 and quarantine_reasons(fleet), LOADED_S, "the data and the quarantine"
    )
    assert quarantine_reasons(fleet) == ["sparkplug_bad_topic"]
    with fleet.connect() as conn:
        assert list(conn.scalars(select(SparkplugNode.group_id))) == [GROUP]
