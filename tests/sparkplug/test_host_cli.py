"""`servicecast sparkplug` answers a bad host id when it starts, as a real process against a real broker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from fleet.settings import EXIT_BAD_SETTING
from tests.ingest.support import REPO
from tests.sparkplug.support import MAP

pytestmark = pytest.mark.mosquitto


@pytest.mark.parametrize("host_id", ["a+b", "a#", "a/b", ""])
def test_a_host_id_that_is_no_sparkplug_id_exits_at_start_with_the_reason(host_id, mosquitto, tmp_path):
    # Its STATE topic spBv1.0/STATE/{host id} would be refused by the broker (which drops the connection,
    # and the host retried forever) or read as another topic by everyone else.
    map_file = tmp_path / "map.yaml"
    map_file.write_text(yaml.safe_dump(MAP))
    env = {
        **os.environ,
        "SERVICECAST_DATABASE_URL": f"sqlite:///{tmp_path / 'host.db'}",
        "SERVICECAST_MQTT_URL": mosquitto.url,
    }
    command = [sys.executable, "-m", "servicecast", "sparkplug", "--map", str(map_file), "--host-id", host_id]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == EXIT_BAD_SETTING, done.stderr[-2000:]
    assert f"invalid --host-id: Sparkplug id {host_id!r} must be non-empty, without / + #" in done.stderr
