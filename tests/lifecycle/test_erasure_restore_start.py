"""A database put back from a copy older than an erasure holds the erased customer again: the commands that
read or write customer data do not start on it (one line naming the customer and `customers erase --reapply`,
exit 1) until that command has erased it again."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, func, select
from typer.testing import CliRunner

from api.app import create_app
from fleet import archive, archive_store, erasure, errors, retention, subprocesses
from fleet.settings import Settings, get_settings
from fleet.tables import Base
from servicecast.cli import app
from tests.api.routing_support import SECRET
from tests.lifecycle import support
from tests.services import free_port

REPO = Path(__file__).resolve().parents[2]
UNDONE = (
    r"acme \(erased 2026-09-28T22:00:00\+00:00 as erased-[0-9a-f]{12}\).*"
    r"`servicecast customers erase --reapply`"
)
# What each process is started with; the runs with --once end by themselves on the old code.
COMMANDS = {
    "score": ["score", "--once"],
    "policy": ["policy", "--once"],
    "route": ["route", "--once"],
    "ingest": ["ingest"],
    "api": ["api"],
    "sparkplug": ["sparkplug", "--map", str(REPO / "docs" / "examples" / "sparkplug-map.yaml")],
    "demo": ["demo", "--no-serve"],  # on a configured database the demo reuses its customers' telemetry
}
# The commands that read or write customer data in the process they run in, each with what they read.
IN_PROCESS = {
    "train": lambda files: ["train"],
    "quarantine replay": lambda files: ["quarantine", "replay"],
    "telemetry import": lambda files: ["telemetry", "import", str(files["telemetry.csv"])],
    "history import": lambda files: ["history", "import", str(files["history.csv"])],
    "machines import": lambda files: ["machines", "import", str(files["machines.csv"])],
    "rollups refresh": lambda files: ["rollups", "refresh"],
    "machines broker-config": lambda files: ["machines", "broker-config", "--out", str(files["broker"])],
    "simulate fleet": lambda files: ["simulate", "fleet", "--backfill", "--machines", "1", "--days", "1"],
}
FILES = {
    "telemetry.csv": "tenant,machine,ts,bearing_temp_c\nacme,p1,2026-10-01T00:00:00Z,51.0\n",
    "history.csv": "tenant,machine,ts,kind\nacme,p1,2026-10-01T00:00:00Z,failure\n",
    "machines.csv": "tenant,machine,machine_type\nacme,p9,centrifugal_pump\n",
}


@contextmanager
def put_back(engine: Engine, postgres, tmp_path: Path, *, archived: bool) -> Iterator[tuple[Engine, str]]:
    """acme and beta with rows; a backup taken (after an archive run if `archived`, else before the
    database's first archive use); acme erased in the database in use; yields the backup put back and the
    archive URL."""
    acme = support.register(engine, "acme", ["p1"])["p1"]
    beta = support.register(engine, "beta", ["q1"])["q1"]
    support.write(engine, support.rows(acme, seqs=range(300), step_s=600.0))
    support.write(engine, support.rows(beta, seqs=range(300), step_s=600.0, seed=1))
    url = str(tmp_path / "archive")
    if archived:
        archive.run(engine, url=url, before=support.START + timedelta(days=1))
    with support.restored_copy(engine, postgres, tmp_path, physical=archived) as restored:
        erasure.erase(
            engine, tenant="acme", confirm="acme", by="cli:test", archive_url=url, now=support.START
        )
        yield restored, url


def environment(restored: Engine, url: str, **extra: str) -> dict[str, str]:
    """The process environment for the restored database and the archive, without the test's own settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    database = restored.url.render_as_string(hide_password=False)
    return env | {"SERVICECAST_DATABASE_URL": database, "SERVICECAST_ARCHIVE_URL": url, **extra}


def reapply(restored: Engine, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`servicecast customers erase --reapply` on the restored database."""
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", restored.url.render_as_string(hide_password=False))
    monkeypatch.setenv("SERVICECAST_ARCHIVE_URL", url)
    get_settings.cache_clear()
    again = CliRunner().invoke(app, ["customers", "erase", "--reapply"])
    assert again.exit_code == 0 and '"customers": 1' in again.output, again.output


def test_no_process_that_touches_customer_data_starts_on_a_database_put_back_from_before_an_erasure(
    engine, postgres, tmp_path, mosquitto, monkeypatch
):
    with put_back(engine, postgres, tmp_path, archived=True) as (restored, url):
        env = environment(
            restored,
            url,
            SERVICECAST_MQTT_URL=mosquitto.url,
            SERVICECAST_API_PORT=str(free_port()),
            SERVICECAST_WEBHOOK_URL="http://127.0.0.1:9/crm",
            SERVICECAST_WEBHOOK_SECRET=SECRET,
        )
        started = {
            name: subprocesses.popen(
                [sys.executable, "-m", "servicecast", *args],
                env=env,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, args in COMMANDS.items()
        }
        try:
            for name, process in started.items():
                # The old code: score, policy and route ran their pass (exit 0), ingest and the API served on.
                _, err = process.communicate(timeout=240)
                assert process.returncode == 1, (name, err)
                line = f"servicecast: `servicecast {name}` did not start: this database holds customers"
                assert line in err and re.search(UNDONE, err), (name, err)
        finally:
            for process in started.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()

        # The app as a uvicorn worker builds it, over HTTP: its start refuses too.
        settings = Settings(database_url=restored.url.render_as_string(hide_password=False), archive_url=url)
        with pytest.raises(
            errors.ErasureUndone,
            match=f"`servicecast api` did not start.*{UNDONE} erases them again, then start it",
        ):
            with TestClient(create_app(settings)):
                pass

        reapply(restored, url, monkeypatch)
        with TestClient(create_app(settings)) as client:
            assert client.get("/healthz").status_code == 200
        scored = subprocess.run(
            [sys.executable, "-m", "servicecast", "score", "--once"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert scored.returncode == 0, scored.stderr


def test_no_command_that_reads_or_writes_customer_data_runs_on_a_database_put_back_from_before_an_erasure(
    engine, postgres, tmp_path, monkeypatch
):
    files = {name: tmp_path / name for name in (*FILES, "broker")}
    for name, text in FILES.items():
        files[name].write_text(text)
    with put_back(engine, postgres, tmp_path, archived=True) as (restored, url):
        monkeypatch.setenv("SERVICECAST_DATABASE_URL", restored.url.render_as_string(hide_password=False))
        monkeypatch.setenv("SERVICECAST_ARCHIVE_URL", url)
        monkeypatch.setenv("SERVICECAST_MQTT_URL", "mqtt://ingest:secret@127.0.0.1:9")  # never connected
        get_settings.cache_clear()
        with restored.connect() as conn:
            before = _row_counts(conn)
        for name, args in IN_PROCESS.items():
            # The old code: train and the imports read and wrote acme's rows, broker-config let its machines
            # in again, the backfill wrote telemetry under acme; each exit 0 or refused a row.
            ran = CliRunner().invoke(app, args(files))
            assert ran.exit_code == 1, (name, ran.output)
            line = f"servicecast: `servicecast {name}` did not start: this database holds customers"
            assert line in ran.output and re.search(UNDONE, ran.output), (name, ran.output)
        with restored.connect() as conn:
            assert _row_counts(conn) == before
        assert not files["broker"].exists()

        reapply(restored, url, monkeypatch)
        assert CliRunner().invoke(app, IN_PROCESS["rollups refresh"](files)).exit_code == 0


def _row_counts(conn: Connection) -> dict[str, int]:
    return {t.name: conn.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def test_a_database_put_back_from_before_its_first_archive_use_is_told_by_its_originals_ledger(
    engine, postgres, tmp_path, monkeypatch
):
    with put_back(engine, postgres, tmp_path, archived=False) as (restored, url):
        settings = Settings(
            database_url=restored.url.render_as_string(hide_password=False), archive_url=url, hot_days=1
        )
        # No store id of its own yet: the ledger of every store folder at the root is read, none drawn.
        with pytest.raises(errors.ErasureUndone, match=UNDONE), TestClient(create_app(settings)):
            pass
        with restored.connect() as conn:
            assert archive_store.folder_in(conn) is None

        # Its first archive use draws a store id of its own (the old code: acme's rows went to files there)
        # and takes over the entries that list its customers, so retention, reads and --reapply know them.
        later = support.START + timedelta(days=5)
        with pytest.raises(errors.ErasureUndone, match=UNDONE):
            archive.run(restored, url=url, before=later)
        with restored.connect() as conn:
            ours = archive_store.folder_in(conn)
        assert ours is not None and ours != archive_store.folder(engine)
        with pytest.raises(errors.ErasureUndone, match=UNDONE):
            retention.run(restored, settings=settings, now=later)

        reapply(restored, url, monkeypatch)
        report = archive.run(restored, url=url, before=later)
        assert report.rows == 300  # beta's; nothing of acme
        assert not (tmp_path / "archive" / ours / "tenant=acme").exists()


def test_an_archive_folder_put_back_from_before_an_erasure_gets_its_ledger_entry_again_from_the_database(
    engine, postgres, tmp_path
):
    acme = support.register(engine, "acme", ["p1"])["p1"]
    support.write(engine, support.rows(acme, seqs=range(300), step_s=600.0))
    url, root = str(tmp_path / "archive"), tmp_path / "archive"
    archive.run(engine, url=url, before=support.START + timedelta(days=1))
    shutil.copytree(root, tmp_path / "archive-backup")
    with support.restored_copy(engine, postgres, tmp_path, physical=True) as restored:
        erasure.erase(
            engine, tenant="acme", confirm="acme", by="cli:test", archive_url=url, now=support.START
        )
        (ledger_file,) = root.rglob(".servicecast-erasures/*.json")
        written = ledger_file.read_bytes()
        shutil.rmtree(root)  # the archive folder put back from its backup; the database in use is not
        shutil.copytree(tmp_path / "archive-backup", root)
        assert not ledger_file.exists() and list(root.rglob("tenant=acme/*/*.parquet"))

        # The database in use keeps each entry it wrote: a process's start writes a lost one back.
        with TestClient(create_app(_settings(engine, url))) as client:  # it holds no erased customer
            assert client.get("/healthz").status_code == 200
        assert ledger_file.read_bytes() == written  # the old code: the entry stayed lost
        with (
            pytest.raises(errors.ErasureUndone, match=UNDONE),
            TestClient(create_app(_settings(restored, url))),
        ):
            pass  # so a database put back later from before the erasure is told again

        # acme's files came back with the folder: unregistered, the next archive run removes them.
        assert archive.run(engine, url=url, before=support.START + timedelta(days=5)).orphans_removed > 0
        assert not list(root.rglob("tenant=acme/*/*.parquet"))


def _settings(engine: Engine, url: str) -> Settings:
    return Settings(database_url=engine.url.render_as_string(hide_password=False), archive_url=url)


def test_a_damaged_ledger_file_is_a_warning_at_start_not_a_refusal(engine, tmp_path, caplog):
    support.register(engine, "acme", ["p1"])
    url = str(tmp_path / "archive")
    erasure.erase(engine, tenant="acme", confirm="acme", by="cli:test", archive_url=url, now=support.START)
    (ledger_file,) = (tmp_path / "archive").rglob(".servicecast-erasures/*.json")
    ledger_file.write_bytes(b"{not json")

    with TestClient(create_app(_settings(engine, url))) as client:  # archive runs stop on it, the API serves
        assert client.get("/healthz").status_code == 200
    assert (
        f"api starts without the erasure ledger checked: the erasure ledger file {ledger_file}" in caplog.text
    )
    with pytest.raises(errors.ErasureLedgerUnreadable):
        archive.run(engine, url=url, before=support.START + timedelta(days=5))


def test_customers_export_does_not_write_a_customer_the_ledger_lists_as_erased(
    engine, postgres, tmp_path, monkeypatch
):
    with put_back(engine, postgres, tmp_path, archived=False) as (restored, url):
        monkeypatch.setenv("SERVICECAST_DATABASE_URL", restored.url.render_as_string(hide_password=False))
        monkeypatch.setenv("SERVICECAST_ARCHIVE_URL", url)
        get_settings.cache_clear()
        out = tmp_path / "exports"
        exported = CliRunner().invoke(app, ["customers", "export", "acme", str(out)])
        assert exported.exit_code == 1, exported.output  # the old code: acme's rows in a ZIP, exit 0
        assert "`servicecast customers export` did not start" in exported.output
        assert re.search(UNDONE, exported.output) and not list(out.glob("*.zip"))

        reapply(restored, url, monkeypatch)
        assert CliRunner().invoke(app, ["customers", "export", "beta", str(out)]).exit_code == 0
        assert [p.name.startswith("servicecast-export-beta-") for p in out.glob("*.zip")] == [True]


IMPORTED = """
import json, sys
from servicecast.cli import app
try:
    app(sys.argv[1:], prog_name="servicecast")
except SystemExit as exc:
    loaded = {name.split(".")[0] for name in sys.modules}
    print(json.dumps([exc.code, sorted(loaded & {"pandas", "pyarrow"})]))
"""


def test_reading_the_ledger_at_start_loads_neither_pandas_nor_pyarrow(engine, postgres, tmp_path):
    # quarantine replay, like the ingester, needs neither: the old start check took them in with fleet.archive
    # (some 100 MB and 0.4 s a start; docs/benchmarks.md), and its refusal with fleet.erasure. The demo
    # refuses before it imports models and the API (the old code: some 2 CPU-s before its refusal).
    replay, demo = ["quarantine", "replay"], ["demo", "--no-serve"]
    with put_back(engine, postgres, tmp_path, archived=False) as (restored, url):
        for database, args, code in ((engine, replay, 0), (restored, replay, 1), (restored, demo, 1)):
            done = subprocess.run(
                [sys.executable, "-c", IMPORTED, *args],
                env=environment(database, url),
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert json.loads(done.stdout.strip().splitlines()[-1]) == [code, []], done.stderr
