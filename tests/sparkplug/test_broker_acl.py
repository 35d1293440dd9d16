"""Each Sparkplug edge node and host has its own broker identity, on a real Mosquitto with our files."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from fleet import credentials
from fleet.settings import get_settings
from servicecast.cli import app
from tests import services
from tests.ingest.support import LOADED_S, REPO, wait_until
from tests.ingest.test_broker_acl import Client

pytestmark = pytest.mark.mosquitto
NODE_A, NODE_B = ("plant1", "line4"), ("plant1", "line5")


@pytest.fixture
def broker(sqlite_engine: Engine, tmp_path):
    if not services.mosquitto_available():
        services.unavailable("the mosquitto binary")
    workdir = tmp_path / "broker"
    workdir.mkdir()
    names = [credentials.edge_node_username(*NODE_A), credentials.edge_node_username(*NODE_B)]
    names.append(credentials.host_username("scada"))
    passwords = {
        name: credentials.issue_sparkplug(engine=sqlite_engine, username=name).password for name in names
    }
    credentials.write_broker_config(
        engine=sqlite_engine, out=workdir, ingest_user="servicecast-ingest", ingest_password="x"
    )
    shipped = REPO / "deploy" / "mosquitto.conf"
    queue = [line for line in shipped.read_text().splitlines() if line.startswith("max_queued_messages")]
    running = services.Mosquitto(workdir, auth=services.shipped_auth(shipped, workdir), extra=queue).start()
    running.passwords = passwords
    yield running
    running.stop()


def connect(broker, name: str) -> Client:
    return Client(broker, name, broker.passwords[name])


def test_an_edge_node_publishes_and_reads_only_its_own_topics_and_the_host_reads_all(broker):
    a = connect(broker, "spBv1.0/plant1/line4")
    b = connect(broker, "spBv1.0/plant1/line5")
    host = connect(broker, "spBv1.0/STATE/scada")
    try:
        assert not host.subscribe("spBv1.0/#").is_failure
        for node in (a, b):
            node.subscribe("spBv1.0/#")  # granted, but the ACL lets only the node's own topics through
        for kind in ("NBIRTH", "NDATA", "NDEATH"):
            assert not a.publish(f"spBv1.0/plant1/{kind}/line4", b"\x08\x01").is_failure
            assert a.publish(f"spBv1.0/plant1/{kind}/line5", b"\x08\x01") == "Not authorized"
            assert a.publish(f"spBv1.0/plant2/{kind}/line4", b"\x08\x01") == "Not authorized"
        for kind in ("DBIRTH", "DDATA", "DDEATH"):
            assert not a.publish(f"spBv1.0/plant1/{kind}/line4/press-7", b"\x08\x01").is_failure
            assert a.publish(f"spBv1.0/plant1/{kind}/line5/press-7", b"\x08\x01") == "Not authorized"
        assert a.publish("spBv1.0/plant1/NCMD/line5", b"\x08\x01") == "Not authorized"
        assert a.publish("spBv1.0/STATE/scada", b'{"online": false, "timestamp": 1}') == "Not authorized"
        assert host.publish("spBv1.0/STATE/other", b'{"online": true, "timestamp": 1}') == "Not authorized"
        assert host.publish("spBv1.0/plant1/NDATA/line4", b"\x08\x01") == "Not authorized"
        assert not host.publish("spBv1.0/STATE/scada", b'{"online": true, "timestamp": 1}').is_failure
        assert not host.publish("spBv1.0/plant1/NCMD/line5", b"\x08\x02").is_failure
        assert not host.publish("spBv1.0/plant1/DCMD/line4/press-7", b"\x08\x03").is_failure
        wait_until(lambda: len(host.received) == 9, LOADED_S, "node A's six messages and the host's three")
        wait_until(lambda: "spBv1.0/plant1/NCMD/line5" in b.received, LOADED_S, "node B's command")
        # The host sent B's command before A's, and a client's deliveries keep that order: had A been given
        # B's command, it would be among A's messages by now.
        wait_until(lambda: "spBv1.0/plant1/DCMD/line4/press-7" in a.received, LOADED_S, "node A's command")
    finally:
        for client in (a, b, host):
            client.close()
    assert sorted(set(host.received)) == sorted(
        {f"spBv1.0/plant1/{kind}/line4" for kind in ("NBIRTH", "NDATA", "NDEATH")}
        | {f"spBv1.0/plant1/{kind}/line4/press-7" for kind in ("DBIRTH", "DDATA", "DDEATH")}
        | {"spBv1.0/STATE/scada", "spBv1.0/plant1/NCMD/line5", "spBv1.0/plant1/DCMD/line4/press-7"}
    )
    assert a.received == ["spBv1.0/STATE/scada", "spBv1.0/plant1/DCMD/line4/press-7"]
    assert b.received == ["spBv1.0/STATE/scada", "spBv1.0/plant1/NCMD/line5"]


def test_sparkplug_ids_that_would_break_the_broker_files_are_refused():
    for group, node in (("STATE", "x"), ("a/b", "x"), ("a", "b c"), ("a", "#"), ("a", "")):
        with pytest.raises(credentials.errors.InvalidInput):
            credentials.edge_node_username(group, node)
    with pytest.raises(credentials.errors.InvalidInput):
        credentials.host_username("scada:1")


def test_the_cli_issues_and_revokes_a_node_credential_and_the_broker_files_follow(
    sqlite_engine, tmp_path, monkeypatch
):
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", str(sqlite_engine.url))
    monkeypatch.setenv("SERVICECAST_MQTT_URL", "mqtt://servicecast-ingest:secret@127.0.0.1:1883")
    get_settings.cache_clear()
    runner = CliRunner()
    issued = runner.invoke(app, ["machines", "sparkplug-credentials", "plant1", "line4"])
    assert issued.exit_code == 0 and "username: spBv1.0/plant1/line4" in issued.stdout
    assert runner.invoke(app, ["machines", "sparkplug-credentials", "plant1"]).exit_code != 0
    assert runner.invoke(app, ["machines", "broker-config", "--out", str(tmp_path)]).exit_code == 0
    assert "user spBv1.0/plant1/line4\n" in (tmp_path / credentials.ACL_FILE).read_text()
    assert "spBv1.0/plant1/line4:$7$" in (tmp_path / credentials.PASSWORD_FILE).read_text()
    revoked = runner.invoke(app, ["machines", "sparkplug-credentials", "plant1", "line4", "--revoke"])
    assert revoked.exit_code == 0, revoked.output
    assert runner.invoke(app, ["machines", "broker-config", "--out", str(tmp_path)]).exit_code == 0
    assert "spBv1.0" not in (tmp_path / credentials.PASSWORD_FILE).read_text()
