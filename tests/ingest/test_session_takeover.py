"""Two ingesters given one MQTT client id against a real Mosquitto: one says so and leaves, none flaps."""

from __future__ import annotations

import json
import urllib.request

import pytest

from ingest.client import TAKEOVERS_BEFORE_EXIT
from tests import services
from tests.ingest.support import (
    IngestProcess,
    count_rows,
    machine_codes,
    messages,
    publish_acked,
    register_fleet,
    wait_until,
)

pytestmark = [pytest.mark.mosquitto, pytest.mark.expect_logged_errors]


def ingest_process(workdir, **options: str) -> IngestProcess:
    """A `servicecast ingest` with a metrics port of its own, logging into a folder of its own."""
    workdir.mkdir()
    return IngestProcess(workdir, SERVICECAST_METRICS_PORT=str(services.free_port()), **options)


def scrape(ingester: IngestProcess, path: str) -> tuple[int, str]:
    """Status and body of the ingester's /metrics or /readyz."""
    port = ingester.env["SERVICECAST_METRICS_PORT"]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def suspected_takeovers(ingester: IngestProcess) -> float:
    """The ingester's servicecast_ingest_suspected_takeovers_total."""
    for line in scrape(ingester, "/metrics")[1].splitlines():
        if line.startswith("servicecast_ingest_suspected_takeovers_total "):
            return float(line.split()[1])
    raise AssertionError("no servicecast_ingest_suspected_takeovers_total in /metrics")


def stores_what_is_published(mqtt_url: str, engine, codes: list[str]) -> None:  # noqa: ANN001
    """Publish 40 messages per machine of acme and wait until every one is stored."""
    batch = messages("acme", codes, per_machine=40)
    publish_acked(mqtt_url, batch, 30)
    wait_until(lambda: count_rows(engine) == len(batch), 60, "every message stored")


def test_a_second_ingester_with_the_same_client_id_makes_one_exit_with_a_clear_message(
    mosquitto, sqlite_engine, tmp_path
):
    codes = machine_codes(5)
    register_fleet(sqlite_engine, "acme", codes)
    options = {"database_url": str(sqlite_engine.url), "mqtt_url": mosquitto.url, "client_id": "same-id"}
    first = ingest_process(tmp_path / "first", **options)
    second = ingest_process(tmp_path / "second", **options)
    try:
        first.start()
        second.start(wait_subscribed=False)
        pair = (first, second)
        wait_until(lambda: any(p.process.poll() is not None for p in pair), 60, "one of the two to give up")
        gone = next(p for p in pair if p.process.poll() is not None)
        kept = second if gone is first else first
        assert gone.process.returncode == 3, gone.log()[-2000:]
        assert "another client connects with the client id 'same-id'" in gone.log(), gone.log()[-2000:]
        assert "--client-id" in gone.log()
        # The one left counted what it saw, and is ready once the broker leaves its connection alone.
        assert suspected_takeovers(kept) >= 1
        wait_until(lambda: scrape(kept, "/readyz")[0] == 200, 30, "the ingester left to be ready")
        assert json.loads(scrape(kept, "/readyz")[1])["broker"] == "subscribed"
        stores_what_is_published(mosquitto.url, sqlite_engine, codes)  # it keeps its session
        assert kept.terminate() == 0, kept.log()[-2000:]
    finally:
        first.stop_quietly()
        second.stop_quietly()
    assert "is another client connected with the client id 'same-id'?" in gone.log()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_lone_ingester_whose_broker_restarts_again_and_again_keeps_running(
    protocol, mosquitto, sqlite_engine, tmp_path
):
    """Each restart closes its connection within seconds of opening it, as a takeover does; it is none."""
    codes = machine_codes(5)
    register_fleet(sqlite_engine, "acme", codes)
    options = {"database_url": str(sqlite_engine.url), "mqtt_url": mosquitto.url, "client_id": "alone"}
    ingester = ingest_process(tmp_path / "alone", SERVICECAST_MQTT_PROTOCOL=protocol, **options)
    try:
        ingester.start()
        for restarts in range(1, TAKEOVERS_BEFORE_EXIT + 2):
            # Down for less than the ingester's 1 s reconnect delay, so its next attempt succeeds; the probe
            # right after the close finds the listener closed, as a restart's is. Back within the very
            # moment of the close (down_for=0), a restart looks as a takeover does (ingest/client.py): the
            # probe then reached it on a loaded machine (2 counted, 2026-12-05).
            mosquitto.restart(down_for=0.5)
            wait_until(
                lambda n=restarts: (
                    ingester.log().count("subscribed to") > n or ingester.process.poll() is not None
                ),
                60,
                f"the ingester back after restart {restarts}",
            )
            assert ingester.process.poll() is None, ingester.log()[-3000:]
        assert suspected_takeovers(ingester) == 0
        stores_what_is_published(mosquitto.url, sqlite_engine, codes)
        assert ingester.terminate() == 0, ingester.log()[-2000:]
    finally:
        ingester.stop_quietly()
    assert "another client" not in ingester.log()
