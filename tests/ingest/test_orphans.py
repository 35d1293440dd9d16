"""The broker and ingester a test starts end when its process is killed with SIGKILL (a stopped run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import services
from tests.ingest.support import IngestProcess
from tests.processes import Watched, children, killed_after

# As a test would: a Mosquitto and `servicecast ingest` through their fixture helpers; then it waits.
STARTER = """
import sys, time
from pathlib import Path
from benchmarks.services import Mosquitto
from tests.ingest.support import IngestProcess
work = Path(sys.argv[1])
broker = Mosquitto(work).start()
database_url = f"sqlite:///{work / 'fleet.db'}"
ingester = IngestProcess(work, database_url=database_url, mqtt_url=broker.url, client_id="orphan").start()
print(broker.process.pid, ingester.process.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.mosquitto
def test_the_broker_and_the_ingester_with_its_writer_end_with_a_killed_test_process(tmp_path: Path) -> None:
    if not services.mosquitto_available():
        services.unavailable("the mosquitto binary")
    with killed_after(STARTER, str(tmp_path)) as (broker, ingester):
        started = Watched([broker, ingester, *children(ingester)])  # the ingester's writer process
        assert len(started.started) == 3, started.started
    started.wait_ended(60, "the processes a killed test started to end")


@pytest.mark.mosquitto
def test_the_writer_process_ends_with_an_ingester_killed_with_sigkill(
    tmp_path: Path, mosquitto: services.Mosquitto
) -> None:
    database_url = f"sqlite:///{tmp_path / 'fleet.db'}"
    ingester = IngestProcess(tmp_path, database_url=database_url, mqtt_url=mosquitto.url, client_id="w")
    try:
        ingester.start()
        writer = Watched(children(ingester.process.pid))
        assert len(writer.started) == 1, writer.started
        ingester.kill9()
        writer.wait_ended(60, "the writer of an ingester killed with SIGKILL to end")
    finally:
        ingester.stop_quietly()
