"""Machine credentials: Mosquitto's hash, only a hash stored, rotation, revocation, the broker files."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from fleet import credentials, errors, registry
from fleet.db import session
from fleet.settings import get_settings
from fleet.tables import MachineCredential
from servicecast.cli import app
from tests import services
from tests.ingest.support import REPO

runner = CliRunner()


def register(engine: Engine, tenant: str, *codes: str) -> None:
    registry.add_customer(engine=engine, tenant=tenant)
    for code in codes:
        registry.add_machine(engine=engine, tenant=tenant, code=code)


def stored(engine: Engine) -> list[tuple[str, str, bool]]:
    query = select(MachineCredential.username, MachineCredential.password_hash, MachineCredential.revoked_at)
    with session(engine) as sess:
        return [(u, h, r is not None) for u, h, r in sess.execute(query.order_by(MachineCredential.username))]


def test_the_hash_is_the_one_mosquitto_passwd_writes(tmp_path):
    if not shutil.which("mosquitto_passwd"):
        services.unavailable("mosquitto_passwd")
    path = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "acme/pump-1", "pa55:word/é"], check=True)
    username, written = path.read_text().strip().split(":", 1)
    _, kind, iterations, salt, _ = written.split("$")
    assert (username, kind) == ("acme/pump-1", "7")
    ours = credentials.mosquitto_hash("pa55:word/é", salt=base64.b64decode(salt), iterations=int(iterations))
    assert ours == written


def test_issue_stores_only_a_hash_rotation_replaces_it_and_revocation_drops_it(engine):
    register(engine, "acme", "pump-1", "pump-2")
    first = credentials.issue(engine=engine, tenant="acme", machine="pump-1")
    assert first.username == "acme/pump-1" and len(first.password) >= 40
    [(username, password_hash, revoked)] = stored(engine)
    assert (username, revoked) == ("acme/pump-1", False)
    assert first.password not in password_hash
    salt, iterations = base64.b64decode(password_hash.split("$")[3]), int(password_hash.split("$")[2])
    assert credentials.mosquitto_hash(first.password, salt=salt, iterations=iterations) == password_hash

    second = credentials.issue(engine=engine, tenant="acme", machine="pump-1")
    assert second.username == first.username and second.password != first.password
    [(_, rotated_hash, _)] = stored(engine)
    assert rotated_hash != password_hash

    credentials.issue(engine=engine, tenant="acme", machine="pump-2")
    credentials.revoke(engine=engine, tenant="acme", machine="pump-1")
    assert [(u, r) for u, _, r in stored(engine)] == [("acme/pump-1", True), ("acme/pump-2", False)]
    lines = credentials.password_file(engine=engine, ingest_user="ingest", ingest_password="x").splitlines()
    assert [line.split(":")[0] for line in lines] == ["ingest", "acme/pump-2"]
    with pytest.raises(errors.NotFound):
        credentials.revoke(engine=engine, tenant="acme", machine="pump-1")
    with pytest.raises(errors.MachineNotFound):
        credentials.issue(engine=engine, tenant="acme", machine="pump-9")

    again = credentials.issue(engine=engine, tenant="acme", machine="pump-1")
    assert [(u, r) for u, _, r in stored(engine)] == [("acme/pump-1", False), ("acme/pump-2", False)]
    assert again.password not in {first.password, second.password}


def test_the_shipped_acl_is_the_one_broker_config_writes():
    assert (REPO / "deploy" / "servicecast.acl").read_text() == credentials.acl()


def test_the_cli_prints_the_password_once_and_writes_the_broker_files(tmp_path, monkeypatch, sqlite_engine):
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", str(sqlite_engine.url))
    register(sqlite_engine, "acme", "pump-1")
    issued = runner.invoke(app, ["machines", "credentials", "acme", "pump-1"])
    assert issued.exit_code == 0, issued.output
    password = re.search(r"^password: (\S+)$", issued.stdout, re.M).group(1)
    assert re.search(r"^username: acme/pump-1$", issued.stdout, re.M)

    no_ingester = runner.invoke(app, ["machines", "broker-config", "--out", str(tmp_path / "broker")])
    assert no_ingester.exit_code == 2 and "SERVICECAST_MQTT_URL" in no_ingester.output
    monkeypatch.setenv("SERVICECAST_MQTT_URL", "mqtt://ingest-1:i-secret@broker.example:1883")
    get_settings.cache_clear()
    written = runner.invoke(app, ["machines", "broker-config", "--out", str(tmp_path / "broker")])
    assert written.exit_code == 0, written.output
    text = (tmp_path / "broker" / "passwords").read_text()
    assert [line.split(":")[0] for line in text.splitlines()] == ["ingest-1", "acme/pump-1"]
    assert password not in text and "i-secret" not in text
    assert (tmp_path / "broker" / "passwords").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "broker" / "servicecast.acl").read_text() == credentials.acl("ingest-1")
    (tmp_path / "broker" / "passwords").chmod(0o600)
    assert runner.invoke(app, ["machines", "broker-config", "--out", str(tmp_path / "broker")]).exit_code == 0
    assert (tmp_path / "broker" / "passwords").stat().st_mode & 0o777 == 0o600

    revoked = runner.invoke(app, ["machines", "credentials", "acme", "pump-1", "--revoke"])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    again = runner.invoke(app, ["machines", "credentials", "acme", "pump-1", "--revoke"])
    assert again.exit_code == 1 and "no credential to revoke" in again.output
    unknown = runner.invoke(app, ["machines", "credentials", "acme", "pump-9"])
    assert unknown.exit_code == 1 and "no machine acme/pump-9" in unknown.output
