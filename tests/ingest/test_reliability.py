"""Reliability of the ingester against a real Mosquitto, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections import Counter

import pytest

from fleet import contract
from fleet.settings import MqttEndpoint
from ingest.client import MqttSource
from ingest.inbox import Inbox
from simulators.publisher import Publisher
from tests import services
from tests.ingest.support import (
    LOADED_S,
    START,
    IngestProcess,
    count_rows,
    crash_and_restart,
    in_process_ingester,
    machine_codes,
    messages,
    publish_acked,
    quarantine_reasons,
    register_fleet,
    stored_keys,
    wait_until,
)

pytestmark = pytest.mark.mosquitto


def topic(machine: str) -> str:
    """The telemetry topic of an acme machine."""
    return contract.telemetry_topic("acme", machine)


def expected_keys(batch: list[tuple[str, bytes]]) -> set[tuple[str, int]]:
    """(machine, seq) of each message."""
    return {(topic.split("/")[2], json.loads(payload)["seq"]) for topic, payload in batch}


def test_closing_the_source_returns_while_its_network_thread_waits_on_a_full_queue(mosquitto):
    # The writer is dead or gave up: nobody takes from the queue, and paho's thread waits in `put`.
    inbox = Inbox(max_messages=1000, max_bytes=2**16)
    source = MqttSource(
        endpoint=MqttEndpoint(mosquitto.url), inbox=inbox, client_id="full-queue", subscription="fleet/+/+/+"
    )
    source.start()
    closer = threading.Thread(target=source.close, daemon=True)
    try:
        wait_until(source.subscribed.is_set, LOADED_S, "the source to subscribe")
        publish_acked(mosquitto.url, [(topic(f"m-{i:03d}"), b"x" * 20_000) for i in range(10)])
        # Three 20 kB messages fill the 64 kB bound; the fourth waits on the queue's condition.
        wait_until(lambda: len(inbox._not_full._waiters) == 1, LOADED_S, "paho's thread waiting in put")  # noqa: SLF001
        source.stop_receiving()
        closer.start()
        closer.join(15)
        assert not closer.is_alive(), "closing must not wait for a queue that nobody drains"
        assert inbox.qsize() == 3
    finally:
        if not closer.is_alive():
            source.client.loop_stop()


def test_kill9_midstream_then_restart_stores_every_message_once(mosquitto, database_url, engine, tmp_path):
    codes = machine_codes(100)
    register_fleet(engine, "acme", codes)
    batch = messages("acme", codes, per_machine=200)
    assert len(batch) == 20_000
    ingester = IngestProcess(
        tmp_path, database_url=database_url, mqtt_url=mosquitto.url, client_id="ingest-a"
    )
    killed_at = []

    def kill() -> None:
        ingester.kill9()
        if engine.dialect.name == "postgresql":  # the commit it had sent may land after the kill
            wait_until(
                lambda: not services.other_sessions_busy(engine), LOADED_S, "the killed ingester's backend"
            )
        killed_at.append(count_rows(engine))

    crash_and_restart(
        ingester, engine, batch, mqtt_url=mosquitto.url, client_id="pub-kill", rows_before=5_000, crash=kill
    )
    assert killed_at[0] < 20_000, "the kill came too late to test anything"
    keys = stored_keys(engine)
    assert len(keys) == 20_000
    assert set(keys) == expected_keys(batch)
    # The second run stored exactly what the first had not committed; redeliveries only count as duplicates.
    stopped = re.search(r"ingester stopped: (\d+) stored, (\d+) duplicates", ingester.log())
    assert stopped, ingester.log()[-500:]
    assert int(stopped.group(1)) == 20_000 - killed_at[0]


def test_bad_messages_are_quarantined_and_the_stream_goes_on(mosquitto, database_url, engine):
    codes = machine_codes(20)
    register_fleet(engine, "acme", codes)
    good = messages("acme", codes, per_machine=500)
    bad = [
        (topic("m-001"), b'{"seq": 1, "ts": "2026-11-23T08:00:00Z", "readings": {'),
        (
            topic("m-002"),
            b'{"seq": "9001", "ts": "2026-11-23T08:00:00Z", "readings": {"temperature_c": 1.0}}',
        ),
        (topic("m-999"), contract.encode_payload(1, START, {"temperature_c": 1.0})),
    ]
    stream = good[:2500] + [bad[0]] + good[2500:5000] + [bad[1]] + good[5000:7500] + [bad[2]] + good[7500:]
    ingester = in_process_ingester(database_url, engine, mosquitto.url, "ingest-bad")
    try:
        publish_acked(mosquitto.url, stream, 60)
        stats = ingester.stats
        wait_until(lambda: stats.stored + stats.quarantined >= len(stream), 60, "every message handled")
    finally:
        ingester.stop()
    assert count_rows(engine) == 10_000
    reasons = quarantine_reasons(engine)
    assert sorted(reasons) == ["malformed_json", "unknown_machine", "wrong_type"]
    assert ingester.source.connections == 1, "a bad message must not cost a reconnect"


def test_same_messages_delivered_three_times_are_stored_once(mosquitto, database_url, engine):
    codes = machine_codes(10)
    register_fleet(engine, "acme", codes)
    batch = messages("acme", codes, per_machine=100)
    ingester = in_process_ingester(database_url, engine, mosquitto.url, "ingest-dup")
    try:
        with Publisher(mosquitto.url) as publisher:
            for _ in range(3):
                publisher.publish_many(batch)
            assert publisher.wait(60)
        stats = ingester.stats
        wait_until(lambda: stats.stored + stats.duplicates >= 3_000, 60, "3,000 deliveries handled")
    finally:
        ingester.stop()
    assert count_rows(engine) == 1_000
    assert ingester.stats.duplicates == 2_000
    assert len(set(stored_keys(engine))) == 1_000


class WriteRefusal:
    """Makes the database refuse writes: an exclusive lock on SQLite, read-only sessions on PostgreSQL."""

    def __init__(self, database_url: str, postgres) -> None:
        self.database_url = database_url
        self.postgres = postgres
        self._lock: sqlite3.Connection | None = None

    def __enter__(self) -> WriteRefusal:
        if self.postgres is not None:
            self.postgres.execute("ALTER DATABASE {db} SET default_transaction_read_only = on")
            self.postgres.terminate_connections()
        else:
            self._lock = sqlite3.connect(self.database_url.removeprefix("sqlite:///"), isolation_level=None)
            self._lock.execute("BEGIN EXCLUSIVE")
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.postgres is not None:
            self.postgres.execute("ALTER DATABASE {db} RESET default_transaction_read_only")
        else:
            self._lock.execute("ROLLBACK")
            self._lock.close()


def test_database_refusing_writes_loses_nothing_and_acks_nothing_early(
    mosquitto, database_url, engine, postgres, tmp_path
):
    codes = machine_codes(10)
    register_fleet(engine, "acme", codes)
    phase1, phase2, phase3 = (messages("acme", codes, 100, first_seq=1 + 100 * k) for k in range(3))
    ingester = IngestProcess(
        tmp_path,
        database_url=database_url,
        mqtt_url=mosquitto.url,
        client_id="ingest-refuse",
        SERVICECAST_DATABASE_BUSY_TIMEOUT_MS="100",
        SERVICECAST_INGEST_RETRY_MAX_S="0.5",
    )
    try:
        ingester.start()
        with Publisher(mosquitto.url) as publisher:
            publisher.publish_many(phase1)
            wait_until(lambda: count_rows(engine) == 1_000, 60, "phase 1 stored")
            with WriteRefusal(database_url, postgres):
                publisher.publish_many(phase2)
                wait_until(
                    lambda: "database refused" in ingester.log(), 30, "the ingester to meet the refusal"
                )
                time.sleep(0.5)
                assert count_rows(engine) == 1_000
                # Killed while nothing could be committed: whatever it had acked early would now be lost.
                ingester.kill9()
            ingester.start()
            wait_until(lambda: count_rows(engine) == 2_000, 60, "phase 2 stored after the restart")
            with WriteRefusal(database_url, postgres):
                refusals_before = ingester.log().count("database refused")
                publisher.publish_many(phase3)
                wait_until(
                    lambda: ingester.log().count("database refused") > refusals_before, 30, "a second refusal"
                )
            wait_until(lambda: count_rows(engine) == 3_000, 60, "phase 3 stored once writes are accepted")
            assert publisher.wait(30)
        assert ingester.terminate() == 0
    finally:
        ingester.stop_quietly()
    keys = stored_keys(engine)
    assert len(keys) == 3_000
    assert set(keys) == expected_keys(phase1 + phase2 + phase3)


def test_broker_restart_midstream_reconnects_and_stores_what_the_broker_kept(mosquitto, database_url, engine):
    codes = machine_codes(20)
    register_fleet(engine, "acme", codes)
    batch = messages("acme", codes, per_machine=300)
    ingester = in_process_ingester(database_url, engine, mosquitto.url, "ingest-restart")
    publisher = Publisher(mosquitto.url, client_id="pub-restart")

    def publish_steadily() -> None:
        for start in range(0, len(batch), 200):
            publisher.publish_many(batch[start : start + 200])
            time.sleep(0.05)

    try:
        sender = threading.Thread(target=publish_steadily)
        sender.start()
        wait_until(lambda: count_rows(engine) >= 1_500, 60, "some rows before the restart")
        mosquitto.restart()
        sender.join(60)
        assert publisher.wait(90), "the publisher's messages were not all acknowledged after the restart"
        acked = [key for key, ok in zip(batch, publisher.acked(), strict=True) if ok]
        wait_until(lambda: count_rows(engine) >= len(acked), 90, "every acknowledged message stored")
    finally:
        publisher.close()
        ingester.stop()
    assert ingester.source.connections >= 2, "the ingester did not reconnect by itself"
    assert len(acked) == len(batch)
    keys = stored_keys(engine)
    assert Counter(keys).most_common(1)[0][1] == 1
    assert set(keys) == expected_keys(acked)


def test_two_replicas_on_a_shared_subscription_split_the_stream_without_duplicates(
    mosquitto, database_url, engine
):
    codes = machine_codes(20)
    register_fleet(engine, "acme", codes)
    batch = messages("acme", codes, per_machine=200)
    replicas = [
        in_process_ingester(database_url, engine, mosquitto.url, f"ingest-{i}", ingest_shared_group="ingest")
        for i in (1, 2)
    ]
    try:
        assert replicas[0].source.subscription == "$share/ingest/fleet/+/+/+"
        publish_acked(mosquitto.url, batch, 60)
        wait_until(lambda: count_rows(engine) == len(batch), 60, "every message stored")
        time.sleep(0.5)
    finally:
        for replica in replicas:
            replica.stop()
    shares = [replica.stats.stored for replica in replicas]
    assert sum(shares) == len(batch) and min(shares) > 0, f"the stream was not shared: {shares}"
    assert sum(replica.stats.duplicates for replica in replicas) == 0
    assert set(stored_keys(engine)) == expected_keys(batch)
