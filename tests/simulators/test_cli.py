"""`servicecast simulate`: backfill is deterministic by seed; live mode without a broker is a usage error."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import inspect, text
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from fleet import labels, machine_types, migrate, subprocesses
from fleet.db import make_engine
from fleet.settings import get_settings
from servicecast.cli import app  # mounts `simulate market` too
from simulators import ground_truth
from simulators.cli import simulate_app
from tests import services
from tests.ingest.support import REPO, wait_until
from tests.simulators.store import declared_parts, stored_telemetry

TINY = ["fleet", "--machines", "6", "--days", "1", "--step-seconds", "600", "--failure-rate", "200"]


def _backfill(monkeypatch, url: str, seed: int) -> tuple[str, dict]:  # noqa: ANN001
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", url)
    get_settings.cache_clear()
    result = CliRunner().invoke(simulate_app, [*TINY, "--seed", str(seed), "--backfill"])
    assert result.exit_code == 0, result.output
    engine = make_engine(url)
    try:
        return result.stdout, stored_telemetry(engine)
    finally:
        engine.dispose()


def test_backfill_with_the_same_seed_stores_the_same_telemetry(monkeypatch, tmp_path):
    out_a, first = _backfill(monkeypatch, f"sqlite:///{tmp_path / 'a.db'}", seed=7)
    out_b, second = _backfill(monkeypatch, f"sqlite:///{tmp_path / 'b.db'}", seed=7)
    _, other = _backfill(monkeypatch, f"sqlite:///{tmp_path / 'c.db'}", seed=8)
    assert len(first) == 6 * 144 and first == second and first != other
    assert "6 machines" in out_a and "864 rows" in out_a and "failures:" in out_a
    assert out_a.splitlines()[-1] == out_b.splitlines()[-1]  # same failures by mode

    _, again = _backfill(monkeypatch, f"sqlite:///{tmp_path / 'a.db'}", seed=7)
    assert again == first


def test_live_mode_without_a_broker_exits_2_with_one_line():
    result = CliRunner().invoke(simulate_app, TINY)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "SERVICECAST_MQTT_URL" in result.stderr and "--mqtt-url" in result.stderr


def test_speed_and_backfill_together_are_refused():
    result = CliRunner().invoke(simulate_app, [*TINY, "--backfill", "--speed", "60"])
    assert result.exit_code == 2 and "--speed" in result.stderr


def test_live_mode_publishes_to_the_broker_it_is_given(monkeypatch, tmp_path, mosquitto):
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", f"sqlite:///{tmp_path / 'truth.db'}")
    result = CliRunner().invoke(simulate_app, [*TINY, "--mqtt-url", mosquitto.url, "--bad-payload-rate", "0"])
    assert result.exit_code == 0, result.output
    assert "864 valid + 0 invalid messages, 864 acked" in result.stdout
    assert "ground truth: run 1" in result.stdout
    assert "types: centrifugal_pump v1, air_compressor v1, cnc_spindle v1" in result.stdout
    engine = make_engine(f"sqlite:///{tmp_path / 'truth.db'}")
    try:
        with engine.connect() as conn:
            worn = labels.read(conn, kinds=("failure", "replacement"))
            # Its labels name parts of the machines' types, as a backfill's do (types applied first).
            assert len(worn) >= 1 and worn["component"].tolist() == declared_parts(conn, worn)
    finally:
        engine.dispose()


def test_backfill_applies_the_simulated_fleets_types_file_as_types_apply_does(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    out, _ = _backfill(monkeypatch, url, seed=7)
    assert "types: centrifugal_pump v1, air_compressor v1, cnc_spindle v1" in out
    again, _ = _backfill(monkeypatch, url, seed=7)
    assert "types: centrifugal_pump v1, air_compressor v1, cnc_spindle v1" in again  # unchanged: no v2
    engine = make_engine(url)
    try:
        stored = {t.name: t.version for t in machine_types.list_types(engine=engine)}
    finally:
        engine.dispose()
    assert stored == {"air_compressor": 1, "centrifugal_pump": 1, "cnc_spindle": 1}


def test_a_broker_that_refuses_the_login_ends_live_mode_with_one_line_and_no_ground_truth(
    monkeypatch, tmp_path
):
    (tmp_path / "broker").mkdir()
    broker = services.Mosquitto(tmp_path / "broker", passwords={"sim": "right"}).start()
    url = f"sqlite:///{tmp_path / 'truth.db'}"
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            simulate_app, [*TINY, "--mqtt-url", f"mqtt://sim:wrong@127.0.0.1:{broker.port}"]
        )
    finally:
        broker.stop()
    assert result.exit_code == 1, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"127.0.0.1:{broker.port} refused the connection" in result.stderr and "wrong" not in result.stderr
    engine = make_engine(url)
    try:
        assert inspect(engine).get_table_names() == [] or ground_truth.list_runs(engine).empty
    finally:
        engine.dispose()


def test_a_seed_or_span_the_store_cannot_hold_is_a_usage_error_of_one_line_naming_it(monkeypatch, tmp_path):
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", f"sqlite:///{tmp_path / 'a.db'}")
    get_settings.cache_clear()
    for option, value in (("--seed", str(2**64)), ("--days", "inf"), ("--days", "nan")):
        result = CliRunner().invoke(simulate_app, [*TINY, option, value, "--backfill"])
        assert result.exit_code == 2, (option, value, result.output)
        assert len(result.stderr.strip().splitlines()) == 1 and option[2:] in result.stderr
    assert not (tmp_path / "a.db").exists()  # refused before anything was written


def test_live_mode_with_a_database_that_cannot_be_opened_is_one_line_before_anything_is_published(
    monkeypatch, tmp_path, mosquitto
):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", f"sqlite:///{tmp_path / 'a-file' / 'truth.db'}")
    get_settings.cache_clear()
    cmapss = tmp_path / "train_FD001.txt"
    cmapss.write_text("".join(f"1 {cycle} " + " ".join(["0.5"] * 24) + "\n" for cycle in (1, 2)))
    for command in (
        [*TINY, "--mqtt-url", mosquitto.url],
        ["replay-cmapss", str(cmapss), "--mqtt-url", mosquitto.url],
    ):
        result = CliRunner().invoke(simulate_app, command)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot open the database SERVICECAST_DATABASE_URL=" in lines[0], lines
        assert "published" not in result.stdout


def test_market_refuses_a_negative_seed_or_contact_budget_as_a_usage_error():
    for option in ("--seed", "--budget"):
        result = CliRunner().invoke(
            app, ["simulate", "market", "--machines", "5", "--customers", "2", option, "-1"]
        )
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (option, result.output)
        assert option in result.output and "Traceback" not in result.output


def test_ctrl_c_during_a_backfill_says_so_in_one_line_and_the_same_command_stores_the_rest(tmp_path):
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    # Four chunks of a day (30 machines × 1,440 steps): the signal comes after the first, before the last.
    args = ["simulate", "fleet", "--machines", "30", "--days", "4", "--failure-rate", "20", "--backfill"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    command = [sys.executable, "-m", "servicecast", *args]
    env = {**clean, "SERVICECAST_DATABASE_URL": url}
    first = subprocesses.popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    engine = make_engine(url)
    try:
        wait_until(lambda: _stored(engine) > 0, 120, "the first chunk to be stored", interval=0.02)
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=60)
        assert first.returncode == 130, stderr
        assert len(stderr.strip().splitlines()) == 1 and "interrupted" in stderr and "again" in stderr, stderr
        assert 0 < _stored(engine) < 30 * 4 * 1440
        again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        assert _stored(engine) == 30 * 4 * 1440
        assert len(ground_truth.list_runs(engine)) == 1
    finally:
        engine.dispose()


def _stored(engine) -> int:  # noqa: ANN001
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT count(*) FROM telemetry")) or 0
    except OperationalError:  # not migrated yet
        return 0


def _servicecast(args: list[str], database_url: str | None = None) -> subprocess.Popen:
    """`servicecast ARGS` as a real process (text pipes), with none of this run's SERVICECAST_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    if database_url:
        env["SERVICECAST_DATABASE_URL"] = database_url
    return subprocesses.popen(
        [sys.executable, "-m", "servicecast", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_broker_that_stops_acknowledging_ends_live_mode_with_one_line_naming_it(mosquitto):
    """Mosquitto frozen (SIGSTOP) once the publisher's first message is through: its window fills, unacked."""
    through = threading.Event()
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2)
    watcher.on_message = lambda *_: through.set()
    watcher.on_connect = lambda client, *_: client.subscribe("fleet/#")
    watcher.connect("127.0.0.1", mosquitto.port)
    watcher.loop_start()
    # 1,100 machines a step (more than the window of 1,000), a step every 10 s: a frozen broker fills it.
    args = ["fleet", "--machines", "1100", "--days", "0.01", "--step-seconds", "60", "--speed", "6"]
    args += ["--bad-payload-rate", "0", "--no-ground-truth", "--ack-timeout", "2"]
    args += ["--mqtt-url", mosquitto.url]
    publisher = _servicecast(["simulate", *args])
    try:
        wait_until(through.is_set, 120, "the publisher's first message at the broker", interval=0.01)
        os.kill(mosquitto.process.pid, signal.SIGSTOP)
        _, stderr = publisher.communicate(timeout=120)
    finally:
        os.kill(mosquitto.process.pid, signal.SIGCONT)
        publisher.kill()
        watcher.loop_stop()
        watcher.disconnect()
    assert publisher.returncode == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"servicecast simulate: the broker at 127.0.0.1:{mosquitto.port} stopped ack")


def test_ctrl_c_in_live_mode_says_in_one_line_what_was_sent_and_acknowledged(tmp_path, mosquitto):
    """A live run sent SIGINT once the broker passed on its first 100 messages: one line, exit 130."""
    received = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2)
    watcher.on_message = lambda _c, _u, msg: received.append(msg.topic)
    watcher.on_connect = lambda client, *_: client.subscribe("fleet/#", qos=1)
    watcher.connect("127.0.0.1", mosquitto.port)
    watcher.loop_start()
    # 50 machines a step, a step a second: still publishing for a day when the signal comes.
    args = ["fleet", "--machines", "50", "--days", "1", "--speed", "60", "--bad-payload-rate", "0"]
    database_url = f"sqlite:///{tmp_path / 'truth.db'}"
    publisher = _servicecast(["simulate", *args, "--mqtt-url", mosquitto.url], database_url)
    try:
        wait_until(lambda: len(received) >= 100, 120, "100 messages at the broker", interval=0.01)
        publisher.send_signal(signal.SIGINT)
        _, stderr = publisher.communicate(timeout=60)
        assert publisher.returncode == 130, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, stderr
        found = re.fullmatch(
            r"servicecast simulate: interrupted: ([\d,]+) messages sent, ([\d,]+) acknowledged, ([\d,]+) "
            r"pending \(not acknowledged, may be lost\); ground truth: run 1",
            lines[0],
        )
        assert found, lines[0]
        sent, acked, pending = (int(n.replace(",", "")) for n in found.groups())
        assert sent >= 100 and acked <= sent and pending == sent - acked
        # What it calls acknowledged reached the broker: the watcher gets at least that many.
        wait_until(lambda: len(received) >= acked, 60, f"{acked} messages at the watcher")
    finally:
        publisher.kill()
        watcher.loop_stop()
        watcher.disconnect()


@pytest.mark.postgres
def test_ctrl_c_before_the_first_chunk_of_a_backfill_says_so_in_one_line(postgres_url):
    """SIGINT while the backfill waits for another process's migration lock, before it stores anything."""
    holder = make_engine(postgres_url)
    args = ["simulate", "fleet", "--machines", "6", "--days", "1", "--backfill"]
    try:
        with holder.connect() as lock:
            lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": migrate.PG_MIGRATION_LOCK})
            lock.commit()
            backfill = _servicecast(args, postgres_url)
            try:
                waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                wait_until(lambda: lock.scalar(waiting) > 0, 120, "the backfill waiting to migrate")
                backfill.send_signal(signal.SIGINT)
                _, stderr = backfill.communicate(timeout=60)
            finally:
                backfill.kill()
    finally:
        holder.dispose()
    assert backfill.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "again" in lines[0], stderr
