"""Settings that would only fail once a process runs are refused when the settings load."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from fleet.settings import EXIT_BAD_SETTING, Settings, describe_error
from tests.ingest.support import REPO

BAD_FILTERS = [
    ("fleet/#/telemetry", "'#' must be a whole level and the last one"),
    ("fleet#", "'#' must be a whole level and the last one"),
    ("#/", "'#' must be a whole level and the last one"),
    ("fleet/+x/telemetry", "'+' must be a whole level"),
    ("fleet/a+/+/telemetry", "'+' must be a whole level"),
    ("", "must not be empty"),
    ("fleet/\0/telemetry", "must not contain the null character"),
    ("$share/g", "a shared subscription is $share/<group>/<filter>"),
    ("$share//fleet/#", "a shared subscription is $share/<group>/<filter>"),
    ("$share/g+/fleet/#", "a shared subscription's group has no / + #"),
    ("$share/g/fleet/#/x", "'#' must be a whole level and the last one"),
    ("fleet/" + "x" * 65_535, "longer than 65,535 bytes"),
]
GOOD_FILTERS = ["fleet/+/+/telemetry", "fleet/+/+/+", "#", "+", "spBv1.0/#", "$share/g/fleet/#", "fleet//x"]


@pytest.mark.parametrize(("value", "reason"), BAD_FILTERS)
def test_a_topic_filter_paho_or_the_broker_would_refuse_is_refused_naming_the_setting(value, reason):
    with pytest.raises(ValidationError) as refused:
        Settings(ingest_topic=value)
    message = describe_error(refused.value)
    assert message.startswith("invalid setting SERVICECAST_INGEST_TOPIC: ")
    assert reason in message


@pytest.mark.parametrize("value", GOOD_FILTERS)
def test_good_topic_filters_stay_accepted(value):
    assert Settings(ingest_topic=value).ingest_topic == value


@pytest.mark.parametrize("group", ["a/b", "a+", "#"])
def test_a_shared_group_that_is_no_share_name_is_refused_naming_the_setting(group):
    with pytest.raises(ValidationError) as refused:
        Settings(ingest_shared_group=group)
    message = describe_error(refused.value)
    assert message.startswith("invalid setting SERVICECAST_INGEST_SHARED_GROUP: ")
    assert "a shared subscription's group has no / + #" in message


def test_a_shared_subscription_longer_than_mqtt_allows_is_refused_though_its_parts_are_not():
    with pytest.raises(ValidationError) as refused:
        Settings(ingest_topic="fleet/" + "x" * 65_000, ingest_shared_group="g" * 600)
    message = describe_error(refused.value)
    assert message == "invalid setting SERVICECAST_INGEST_SHARED_GROUP: is longer than 65,535 bytes"


def test_a_shared_group_on_a_topic_that_is_already_shared_is_refused():
    with pytest.raises(ValidationError) as refused:
        Settings(ingest_topic="$share/a/fleet/#", ingest_shared_group="b")
    assert describe_error(refused.value).startswith("invalid setting SERVICECAST_INGEST_SHARED_GROUP: ")


def test_a_shared_group_makes_a_shared_subscription():
    assert Settings(ingest_shared_group="ingest").subscription() == "$share/ingest/fleet/+/+/+"


@pytest.mark.mosquitto
def test_ingest_with_a_bad_topic_filter_exits_at_start_with_the_bad_setting_code(mosquitto, tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    env = {
        **clean,
        "SERVICECAST_DATABASE_URL": f"sqlite:///{tmp_path / 'ingest.db'}",
        "SERVICECAST_MQTT_URL": mosquitto.url,
        "SERVICECAST_INGEST_TOPIC": "fleet/#/telemetry",
    }
    command = [sys.executable, "-m", "servicecast", "ingest", "--client-id", "ingest-bad-topic"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == EXIT_BAD_SETTING, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        "servicecast: invalid setting SERVICECAST_INGEST_TOPIC: '#' must be a whole level and the last one"
        " (as in fleet/#), got 'fleet/#/telemetry'"
    ]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0.05", "greater than or equal to 0.1"),
        ("601", "less than or equal to 600"),
        ("inf", "finite number"),
        ("5s", "a valid number"),
    ],
)
def test_a_partition_lock_timeout_out_of_its_bounds_is_refused_naming_the_setting(monkeypatch, value, reason):
    monkeypatch.setenv("SERVICECAST_PARTITION_LOCK_TIMEOUT_S", value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = describe_error(refused.value)
    assert message.startswith("invalid setting SERVICECAST_PARTITION_LOCK_TIMEOUT_S: ") and reason in message


def test_a_partition_lock_timeout_of_zero_stops_retention_at_start(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    env = {
        **clean,
        "SERVICECAST_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "SERVICECAST_PARTITION_LOCK_TIMEOUT_S": "0",
    }
    command = [sys.executable, "-m", "servicecast", "retention", "run"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_BAD_SETTING, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        "servicecast: invalid setting SERVICECAST_PARTITION_LOCK_TIMEOUT_S: "
        "Input should be greater than or equal to 0.1"
    ]


def test_a_partition_lock_timeout_within_its_bounds_is_read_in_seconds(monkeypatch):
    monkeypatch.setenv("SERVICECAST_PARTITION_LOCK_TIMEOUT_S", "0.25")
    assert Settings().partition_lock_timeout_s == 0.25
