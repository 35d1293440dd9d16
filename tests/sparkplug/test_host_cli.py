"""`servicecast sparkplug` answers a bad host id when it starts, as a real process against a real broker."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import yaml

from fleet.settings import EXIT_BAD_SETTING
from tests.ingest.support import REPO
from tests.sparkplug.support import MAP

pytestmark = pytest.mark.mosquitto


def run_host(host_id: str, mqtt_url: str, workdir, the_map: dict = MAP) -> subprocess.CompletedProcess:
    """`servicecast sparkplug --host-id HOST_ID` until it ends by itself (30 s at most)."""
    map_file = workdir / "map.yaml"
    map_file.write_text(yaml.safe_dump(the_map))
    env = {
        **os.environ,
        "SERVICECAST_DATABASE_URL": f"sqlite:///{workdir / 'host.db'}",
        "SERVICECAST_MQTT_URL": mqtt_url,
    }
    command = [sys.executable, "-m", "servicecast", "sparkplug", "--map", str(map_file), "--host-id", host_id]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("host_id", ["a+b", "a#", "a/b", ""])
def test_a_host_id_that_is_no_sparkplug_id_exits_at_start_with_the_reason(host_id, mosquitto, tmp_path):
    # Its STATE topic spBv1.0/STATE/{host id} would be refused by the broker (which drops the connection,
    # and the host retried forever) or read as another topic by everyone else.
    done = run_host(host_id, mosquitto.url, tmp_path)
    assert done.returncode == EXIT_BAD_SETTING, done.stderr[-2000:]
    assert f"invalid --host-id: Sparkplug id {host_id!r} must be non-empty, without / + #" in done.stderr


def test_a_host_id_longer_than_its_node_states_key_exits_at_start(mosquitto, tmp_path):
    # On PostgreSQL every birth and data message of such a host was quarantined as db_rejected (value too long
    # for sparkplug_nodes.host_id, varchar(64)), and Sparkplug rows are not replayed.
    done = run_host("h" * 65, mosquitto.url, tmp_path)
    assert done.returncode == EXIT_BAD_SETTING, done.stderr[-2000:]
    assert "invalid --host-id: at most 64 characters, got 65" in done.stderr


def test_a_map_with_an_id_no_topic_can_carry_exits_at_start_with_the_entry(mosquitto, tmp_path):
    # Without the check the host ran, and every message of that machine was quarantined as sparkplug_unmapped.
    the_map = copy.deepcopy(MAP)
    the_map["machines"][0]["edge_node"] = "line/4"
    done = run_host("scada", mosquitto.url, tmp_path, the_map)
    assert done.returncode == EXIT_BAD_SETTING, done.stderr[-2000:]
    expected = f"servicecast: {tmp_path / 'map.yaml'}: machines[0]: edge_node: Sparkplug id 'line/4' must be"
    assert done.stderr.startswith(expected) and done.stderr.count("\n") == 1, done.stderr[-2000:]
