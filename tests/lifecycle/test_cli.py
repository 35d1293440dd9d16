"""The lifecycle commands as an operator runs them: retention, rollups, export, erase."""

from __future__ import annotations

import json
import uuid
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import func, make_url, select, text

from fleet import archive, archive_store, registration
from fleet.tables import Customer, Telemetry
from tests import services
from tests.fleet.test_cli import run_cli
from tests.lifecycle import support


def test_retention_export_and_erase_from_the_command_line(engine, database_url, tmp_path):
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(0, 300), step_s=600.0))
    env = {"SERVICECAST_DATABASE_URL": database_url, "SERVICECAST_ARCHIVE_URL": str(tmp_path / "archive")}

    dry = run_cli("retention", "run", "--dry-run", **env)
    assert dry.returncode == 0, dry.stderr
    # Each line names what it counts: "would archive 2017 older than …" was read as a year.
    assert "telemetry_hot: would archive 300 rows older than " in dry.stdout
    assert "quarantine: would delete 0 messages older than " in dry.stdout
    assert "dead_erasure_events: would drop the account ids of 0 announcements older than " in dry.stdout
    done = run_cli("retention", "run", **env)
    assert done.returncode == 0 and "telemetry_hot: did archive 300 rows" in done.stdout, done.stderr
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Telemetry)) == 0
    assert run_cli("rollups", "refresh", **env).returncode == 0

    out = run_cli("customers", "export", "acme", str(tmp_path / "out"), **env)
    assert out.returncode == 0, out.stderr
    manifest = json.loads(zipfile.ZipFile(out.stdout.strip()).read("manifest.json"))
    assert manifest["telemetry"]["rows"] == 300

    refused = run_cli("customers", "erase", "acme", "--confirm", "acm", **env)
    assert refused.returncode != 0 and "--confirm must repeat the tenant id" in refused.stderr
    erased = run_cli("customers", "erase", "acme", "--confirm", "acme", **env)
    assert erased.returncode == 0, erased.stderr
    receipt = json.loads(erased.stdout)
    assert receipt["counts"]["archive_rows"] == 300 and receipt["pseudonym"].startswith("erased-")
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Customer)) == 0


def _damaged_archive(engine, tmp_path, ids: tuple[int, int]) -> tuple[str, str]:
    """300 rows of the machine archived, then the archive's one file truncated; returns (url, its path)."""
    support.write(engine, support.rows(ids, seqs=range(0, 300), step_s=600.0))
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=30))
    [path] = support.archived_files(url)
    with open(path, "r+b") as damaged:
        damaged.truncate(100)
    return url, path


def _assert_one_line_naming(out, path: str) -> None:
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("servicecast: archive month 2026-09 cannot be read: ")
    assert out.stderr.count("\n") == 1 and path in out.stderr, out.stderr


def test_an_unreadable_archive_file_stops_retention_and_refresh_with_one_line(sqlite_engine, tmp_path):
    """A late row for an archived hour makes the refresh read that hour's file, damaged meanwhile."""
    ids = support.register(sqlite_engine, "acme", ["p1"])
    url, path = _damaged_archive(sqlite_engine, tmp_path, ids["p1"])
    support.write(sqlite_engine, support.rows(ids["p1"], seqs=range(1000, 1001), step_s=1.0))  # late
    env = {"SERVICECAST_DATABASE_URL": str(sqlite_engine.url), "SERVICECAST_ARCHIVE_URL": url}
    for command in (("rollups", "refresh"), ("retention", "run")):
        _assert_one_line_naming(run_cli(*command, **env), path)


def test_training_over_an_unreadable_archive_file_stops_with_one_line(sqlite_engine, tmp_path):
    machines = [{"tenant": "acme", "machine": "p1", "machine_type": "pump"}]
    purposes = {"acme": ("product_improvement",)}  # pooled for training
    registration.register_machines(engine=sqlite_engine, machines=machines, purposes=purposes)
    ids = support.register(sqlite_engine, "acme", ["p1"])
    url, path = _damaged_archive(sqlite_engine, tmp_path, ids["p1"])
    out = run_cli("train", SERVICECAST_DATABASE_URL=str(sqlite_engine.url), SERVICECAST_ARCHIVE_URL=url)
    _assert_one_line_naming(out, path)


@pytest.mark.postgres
def test_a_database_that_refuses_a_connection_mid_command_ends_erase_with_one_line_and_nothing_erased(
    postgres_url, tmp_path
):
    """A role allowed one session: start-up has it, so erasure (beside the archive lock) is refused."""
    role = f"sc_one_{uuid.uuid4().hex[:8]}"
    with services.migrated_engine(postgres_url) as engine:
        ids = support.register(engine, "acme", ["p1"])
        support.write(engine, support.rows(ids["p1"], seqs=range(0, 300), step_s=600.0))
        with engine.begin() as conn:
            conn.execute(text(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 1'))
            conn.execute(text(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"'))
            conn.execute(text(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
        try:
            limited = make_url(postgres_url).set(username=role).render_as_string(hide_password=False)
            env = {"SERVICECAST_DATABASE_URL": limited, "SERVICECAST_ARCHIVE_URL": str(tmp_path / "archive")}
            result = run_cli("customers", "erase", "acme", "--confirm", "acme", **env)
            # Archiving makes a partition, which this role may not: refused mid-command too.
            retained = run_cli("retention", "run", **env)
        finally:
            with engine.begin() as conn:
                conn.execute(text(f'DROP OWNED BY "{role}"'))
                conn.execute(text(f'DROP ROLE "{role}"'))
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("servicecast: "), result.stderr
        assert "too many connections" in lines[0] and "SERVICECAST_DATABASE_URL=" in lines[0]
        assert retained.returncode == 1 and retained.stderr.count("\n") == 1, retained.stderr
        assert retained.stderr.startswith("servicecast: cannot run retention in the database SERVICECAST_")
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Customer)) == 1
            assert conn.scalar(select(func.count()).select_from(Telemetry)) == 300


_KEEP_QUARANTINE = {  # a database that refuses to delete quarantined rows (a DBA's rule), as its error
    "sqlite": [
        "CREATE TRIGGER keep_quarantine BEFORE DELETE ON quarantine "
        "BEGIN SELECT RAISE(ABORT, 'quarantine is kept for an investigation'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION keep_quarantine() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'quarantine is kept for an investigation'; END $$",
        "CREATE TRIGGER keep_quarantine BEFORE DELETE ON quarantine "
        "FOR EACH ROW EXECUTE FUNCTION keep_quarantine()",
    ],
}


def test_a_retention_run_that_fails_part_way_names_the_steps_done_and_a_rerun_finishes(
    engine, database_url, tmp_path
):
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(0, 300), step_s=600.0))
    support.quarantine_daily(engine, support.START, 3)
    with engine.begin() as conn:
        for statement in _KEEP_QUARANTINE[engine.dialect.name]:
            conn.execute(text(statement))
    env = {
        "SERVICECAST_DATABASE_URL": database_url,
        "SERVICECAST_ARCHIVE_URL": str(tmp_path / "archive"),
        "SERVICECAST_RETAIN_QUARANTINE_DAYS": "7",
    }

    failed = run_cli("retention", "run", **env)
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1, failed.stderr
    assert failed.stderr.startswith("servicecast: cannot run retention in the database SERVICECAST_")
    assert "quarantine is kept for an investigation" in failed.stderr
    assert (
        "; retention steps done: telemetry_hot, rollup_minute, rollup_hour; "
        "not done: quarantine (where it stopped), predictions, dead_erasure_events; "
        "`servicecast retention run` again does them"
    ) in failed.stderr
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Telemetry)) == 0  # archived: stays done

    with engine.begin() as conn:
        conn.execute(
            text(
                "DROP TRIGGER keep_quarantine" + (" ON quarantine" if engine.dialect.name != "sqlite" else "")
            )
        )
    rerun = run_cli("retention", "run", **env)
    assert rerun.returncode == 0, rerun.stderr
    assert "telemetry_hot: did archive 0" in rerun.stdout and "quarantine: did delete 3" in rerun.stdout


def test_an_archive_that_cannot_be_written_stops_retention_with_one_line_naming_the_steps(
    sqlite_engine, tmp_path
):
    ids = support.register(sqlite_engine, "acme", ["p1"])
    support.write(sqlite_engine, support.rows(ids["p1"], seqs=range(0, 300), step_s=600.0))
    ours = tmp_path / "archive" / archive_store.folder(sqlite_engine)
    ours.mkdir(parents=True)
    (ours / "tenant=acme").write_text("")  # a file as its tenant folder (a URL below a file: exit 2)
    env = {"SERVICECAST_DATABASE_URL": str(sqlite_engine.url), "SERVICECAST_ARCHIVE_URL": str(ours.parent)}
    out = run_cli("retention", "run", **env)
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("servicecast: [Errno 20] Not a directory: ")
    assert (
        "; retention steps done: none; not done: telemetry_hot (where it stopped), rollup_minute"
        in out.stderr
    )


@pytest.mark.parametrize("tenant", ["", "a b", "../acme", "plant:7"])
def test_erasing_a_tenant_id_no_customer_can_have_says_no_customer(sqlite_engine, tmp_path, tenant):
    env = {"SERVICECAST_DATABASE_URL": str(sqlite_engine.url), "SERVICECAST_ARCHIVE_URL": str(tmp_path / "a")}
    out = run_cli("customers", "erase", tenant, "--confirm", tenant, **env)
    assert (out.returncode, out.stderr) == (1, f"servicecast: no customer {tenant!r}\n")
