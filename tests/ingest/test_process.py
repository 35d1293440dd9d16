"""The ingester as an operator runs it: embedded broker, credentials, SIGTERM, metrics."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from servicecast.broker import EmbeddedBroker
from simulators.publisher import Publisher
from tests import services
from tests.ingest.support import (
    IngestProcess,
    count_rows,
    crash_and_restart,
    in_process_ingester,
    machine_codes,
    messages,
    poison_everything,
    publish_acked,
    register_fleet,
    stored_keys,
    wait_until,
)

# `servicecast ingest` with a topic filter that paho refuses in `subscribe`.
INGEST_WITH_A_FILTER_PAHO_REFUSES = """
import sys
from fleet.bootstrap import load_settings, ready_engine
from ingest.service import Ingester
settings = load_settings().model_copy(update={"ingest_topic": "fleet/#/telemetry"})
engine, endpoint = ready_engine(settings), settings.mqtt_endpoint()
ingester = Ingester(settings=settings, engine=engine, endpoint=endpoint, client_id="ingest-net")
sys.exit(ingester.run())
"""


def own_mosquitto(workdir: Path, **options: object) -> services.Mosquitto:
    """A started Mosquitto of the test's own, configured with `options` (the fixture's takes none)."""
    if not services.mosquitto_available():
        services.unavailable("the mosquitto binary")
    workdir.mkdir(exist_ok=True)
    return services.Mosquitto(workdir, **options).start()


@pytest.mark.parametrize("writer_process", [True, False], ids=["writer-process", "writer-thread"])
def test_embedded_amqtt_broker_mqtt311_stores_1000_messages(sqlite_engine, tmp_path, writer_process):
    codes = machine_codes(10)
    register_fleet(sqlite_engine, "acme", codes)
    url = str(sqlite_engine.url)
    with EmbeddedBroker() as broker:
        ingester = in_process_ingester(
            url,
            sqlite_engine,
            broker.url,
            "ingest-amqtt",
            mqtt_protocol="3.1.1",
            ingest_writer_process=writer_process,
        )
        try:
            with Publisher(broker.url, protocol="3.1.1") as publisher:
                publisher.publish_many(messages("acme", codes, per_machine=100))
                assert publisher.wait(30)
            wait_until(lambda: count_rows(sqlite_engine) == 1_000, 30, "1,000 rows")
        finally:
            ingester.stop()
    assert ingester.stats.stored == 1_000


@pytest.mark.mosquitto
@pytest.mark.expect_logged_errors
def test_bad_credentials_exit_with_a_clear_message(sqlite_engine, tmp_path):
    broker = own_mosquitto(tmp_path / "auth", passwords={"acme": "right"})
    try:
        wrong = IngestProcess(
            tmp_path,
            database_url=str(sqlite_engine.url),
            mqtt_url=f"mqtt://acme:wrong@127.0.0.1:{broker.port}",
            client_id="ingest-wrong",
        )
        assert wrong.start(wait_subscribed=False).wait_exit(30) == 3
        # Mosquitto answers a wrong password with "not authorised"; others say "bad user name or password".
        assert "rejected the user name or password" in wrong.log() or "not authorised" in wrong.log()
        assert "SERVICECAST_MQTT_URL" in wrong.log()

        right = IngestProcess(
            tmp_path,
            database_url=str(sqlite_engine.url),
            mqtt_url=f"mqtt://acme:right@127.0.0.1:{broker.port}",
            client_id="ingest-right",
        )
        right.start()
        assert right.terminate() == 0
    finally:
        broker.stop()


@pytest.mark.mosquitto
def test_a_broker_certificate_it_cannot_verify_is_named_and_ssl_cert_file_trusts_it(sqlite_engine, tmp_path):
    workdir = tmp_path / "tls"
    workdir.mkdir()
    key, cert = workdir / "broker.key", workdir / "broker.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(key)]
        + ["-out", str(cert), "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    broker = own_mosquitto(workdir, extra=[f"certfile {cert}", f"keyfile {key}"])
    url, database_url = f"mqtts://127.0.0.1:{broker.port}", str(sqlite_engine.url)
    untrusted = IngestProcess(
        tmp_path, database_url=database_url, mqtt_url=url, client_id="ingest-private-ca"
    )
    trusted = IngestProcess(
        tmp_path, database_url=database_url, mqtt_url=url, client_id="ingest-trusted", SSL_CERT_FILE=str(cert)
    )
    try:
        untrusted.start(wait_subscribed=False)
        wait_until(lambda: "certificate verify failed" in untrusted.log(), 30, "the TLS failure in the log")
        assert "SSL_CERT_FILE" in untrusted.log()
        assert untrusted.terminate() == 0
        trusted.start()
        assert trusted.terminate() == 0
    finally:
        untrusted.stop_quietly()
        trusted.stop_quietly()
        broker.stop()


@pytest.mark.mosquitto
def test_sigterm_flushes_acks_and_exits_0(mosquitto, database_url, engine, tmp_path):
    codes = machine_codes(20)
    register_fleet(engine, "acme", codes)
    batch = messages("acme", codes, per_machine=300)
    port = services.free_port()
    ingester = IngestProcess(
        tmp_path,
        database_url=database_url,
        mqtt_url=mosquitto.url,
        client_id="ingest-term",
        SERVICECAST_METRICS_PORT=str(port),
    )
    try:
        ingester.start()
        publish_acked(mosquitto.url, batch, 30)
        wait_until(lambda: count_rows(engine) > 0, 30, "the first rows")
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        ready = urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert (ready.status, json.loads(ready.read())["ready"]) == (200, True)
        for name in (
            'servicecast_ingest_messages_total{outcome="stored"}',
            "servicecast_ingest_batch_commit_seconds_bucket",
            "servicecast_ingest_lag_seconds_bucket",
            "servicecast_ingest_reconnects_total",
            "servicecast_ingest_queue_depth",
        ):
            assert name in scraped
        assert ingester.terminate() == 0
        first_run = ingester.log()
        ingester.start()
        wait_until(lambda: count_rows(engine) == len(batch), 60, "the rest after the restart")
        assert ingester.terminate() == 0
    finally:
        ingester.stop_quietly()
    assert "ingester stopped" in first_run
    # Everything the first run committed it also acked: the second run saw none of it again.
    assert re.search(r"\b0 duplicates", ingester.log()), ingester.log()[-500:]


@pytest.mark.mosquitto
@pytest.mark.expect_logged_errors
def test_the_process_exits_non_zero_within_seconds_when_its_writer_dies(mosquitto, sqlite_engine, tmp_path):
    codes = machine_codes(2)
    register_fleet(sqlite_engine, "acme", codes)
    poison_everything(sqlite_engine)
    ingester = IngestProcess(
        tmp_path, database_url=str(sqlite_engine.url), mqtt_url=mosquitto.url, client_id="ingest-dies"
    )
    try:
        ingester.start()
        publish_acked(mosquitto.url, messages("acme", codes, per_machine=20), 30)
        assert ingester.wait_exit(15) == 4
    finally:
        ingester.stop_quietly()
    assert "the writer died" in ingester.log()
    assert count_rows(sqlite_engine) < 40


def writer_pid(ingester: IngestProcess) -> int:
    """The writer process of a running `servicecast ingest` (its only child)."""
    pid = ingester.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


@pytest.mark.mosquitto
@pytest.mark.expect_logged_errors
def test_a_killed_writer_process_makes_the_ingester_exit_non_zero_and_nothing_is_lost(
    mosquitto, database_url, engine, tmp_path
):
    codes = machine_codes(20)
    register_fleet(engine, "acme", codes)
    batch = messages("acme", codes, per_machine=300)
    ingester = IngestProcess(
        tmp_path, database_url=database_url, mqtt_url=mosquitto.url, client_id="ingest-w9"
    )

    def kill_writer() -> None:
        os.kill(writer_pid(ingester), signal.SIGKILL)
        assert ingester.wait_exit(15) == 4
        assert "the writer died" in ingester.log()

    crash_and_restart(
        ingester, engine, batch, mqtt_url=mosquitto.url, client_id="pub-w9", rows_before=1, crash=kill_writer
    )
    keys = stored_keys(engine)
    assert len(keys) == len(batch) and len(set(keys)) == len(batch)


@pytest.mark.mosquitto
def test_the_process_exits_non_zero_when_its_network_thread_dies(mosquitto, sqlite_engine, tmp_path):
    # paho refuses this filter in `subscribe`, called from on_connect: the exception ends paho's network
    # thread, and the process would go on running, receiving nothing. The settings refuse the filter at start,
    # so the ingester is given it here past them: it stands for any exception in a paho callback.
    ingester = IngestProcess(
        tmp_path, database_url=str(sqlite_engine.url), mqtt_url=mosquitto.url, client_id="ingest-net"
    )
    ingester.command = [sys.executable, "-c", INGEST_WITH_A_FILTER_PAHO_REFUSES]
    try:
        ingester.start(wait_subscribed=False)
        assert ingester.wait_exit(15) == 5, ingester.log()[-2000:]
    finally:
        ingester.stop_quietly()
    assert "Invalid subscription filter" in ingester.log()
    assert "the MQTT network thread ended" in ingester.log()
