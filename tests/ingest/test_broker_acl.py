"""The shipped ACL: a tenant can publish only under its own id; the ingester reads everyone's."""

from __future__ import annotations

import shutil
import time

import pytest

from fleet import contract
from simulators.publisher import Publisher
from tests import services
from tests.ingest.support import REPO, START, count_rows, in_process_ingester, quarantine_reasons, wait_until

pytestmark = pytest.mark.mosquitto


def test_tenant_cannot_publish_as_another_tenant(sqlite_engine, tmp_path):
    if not services.mosquitto_available():
        services.unavailable("the mosquitto binary")
    workdir = tmp_path / "acl"
    workdir.mkdir()
    shutil.copy(REPO / "deploy" / "servicecast.acl", workdir / "servicecast.acl")
    broker = services.Mosquitto(
        workdir,
        passwords={"acme": "a-pass", "globex": "g-pass", "servicecast-ingest": "i-pass"},
        extra=[f"acl_file {workdir / 'servicecast.acl'}"],
    ).start()
    url = str(sqlite_engine.url)
    ingester = in_process_ingester(
        url,
        sqlite_engine,
        f"mqtt://servicecast-ingest:i-pass@127.0.0.1:{broker.port}",
        "servicecast-ingest",
        ingest_auto_register=True,
    )
    try:
        payload = contract.encode_payload(1, START, {"temperature_c": 50.0})
        with Publisher(f"mqtt://acme:a-pass@127.0.0.1:{broker.port}") as acme:
            acme.publish(contract.telemetry_topic("acme", "pump-1"), payload)
            # The broker drops the publish to another tenant's topic (MQTT 5 would say why in the PUBACK).
            acme.publish(contract.telemetry_topic("globex", "pump-1"), payload)
            assert acme.wait(10)
        wait_until(lambda: count_rows(sqlite_engine) >= 1, 15, "acme's message")
        time.sleep(1.0)
    finally:
        ingester.stop()
        broker.stop()
    assert count_rows(sqlite_engine) == 1
    assert quarantine_reasons(sqlite_engine) == []


def test_shipped_production_config_is_accepted_by_mosquitto(tmp_path):
    if not services.mosquitto_available():
        services.unavailable("the mosquitto binary")
    shipped = (REPO / "deploy" / "mosquitto.conf").read_text().splitlines()
    keep = [
        line
        for line in shipped
        if line.strip()
        and not line.startswith("#")
        and line.split()[0] not in ("listener", "certfile", "keyfile", "cafile", "password_file", "acl_file")
        and line != "allow_anonymous false"
    ]
    keep = [
        f"persistence_location {tmp_path}/" if line.startswith("persistence_location") else line
        for line in keep
    ]
    assert any(line.startswith("max_queued_messages") for line in keep)
    assert "persistence true" in keep
    broker = services.Mosquitto(tmp_path, extra=keep, replace_defaults=True).start()
    try:
        assert broker.process.poll() is None
    finally:
        broker.stop()
