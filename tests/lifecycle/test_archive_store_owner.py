"""The archive store's owner: a copy of the database made its own (`retention claim-archive`), a database that
replaces the owner, a moved SQLite file, a PostgreSQL user refused `pg_control_system`, and migration 0026."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, make_url, select, text

from fleet import archive, archive_owner, archive_store, migrate, retention
from fleet.db import make_engine
from fleet.errors import ArchiveStoreCopied, ArchiveStoreTaken
from fleet.settings import Settings
from fleet.tables import ArchiveStore
from tests import services
from tests.fleet.test_cli import run_cli
from tests.lifecycle import support


def _ten_days_archived(engine, url: str) -> int:
    """Acme's p1 with 40 days of hourly rows, the first 10 archived under `url`; the machine's id."""
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(40 * 24), step_s=3600.0))
    archive.run(engine, url=url, before=support.START + timedelta(days=10))
    return ids["p1"][1]


def test_a_copy_given_an_archive_of_its_own_and_claimed_works_beside_the_original(engine, postgres, tmp_path):
    url, own = str(tmp_path / "archive"), str(tmp_path / "staging-archive")
    machine = _ten_days_archived(engine, url)
    originals = support.archived_files(url)
    with support.restored_copy(engine, postgres, tmp_path) as copy:
        shutil.copytree(url, own)  # the files the copy registers, under its own URL
        env = {"SERVICECAST_DATABASE_URL": copy.url.render_as_string(hide_password=False)}
        claimed = run_cli("retention", "claim-archive", SERVICECAST_ARCHIVE_URL=own, **env)
        assert claimed.returncode == 0, claimed.stderr
        assert f"owns the archive folder {own}/{archive_store.folder(copy)} now" in claimed.stdout

        archive.run(copy, url=own, before=support.START + timedelta(days=30))
        assert len(support.read_machine(copy, machine, own)) == 40 * 24
        settings = Settings(archive_url=own, hot_days=365, retain_archive_days=1)  # expires every file
        retention.run(copy, settings=settings, now=support.START + timedelta(days=90))
        assert support.archived_files(own) == []

        assert support.archived_files(url) == originals  # the original goes on, its files untouched
        archive.run(engine, url=url, before=support.START + timedelta(days=40))
        assert len(support.read_machine(engine, machine, url)) == 40 * 24


def test_a_copy_that_replaces_the_original_claims_the_shared_folder_and_the_original_stops(
    engine, postgres, tmp_path
):
    url = str(tmp_path / "archive")
    machine = _ten_days_archived(engine, url)
    with support.restored_copy(engine, postgres, tmp_path) as copy:
        assert archive_store.adopt(copy, archive.location(url)) == f"{url}/{archive_store.folder(copy)}"
        archive.run(copy, url=url, before=support.START + timedelta(days=40))
        assert len(support.read_machine(copy, machine, url)) == 40 * 24
        # The original is still its own store's owner, but the folder's marker holds the copy's token now.
        with pytest.raises(
            ArchiveStoreTaken, match="run `servicecast retention claim-archive` alone"
        ) as stopped:
            archive.run(engine, url=url, before=support.START + timedelta(days=40))
        assert not isinstance(stopped.value, ArchiveStoreCopied)


def test_a_sqlite_file_renamed_stays_the_owner_and_a_copied_one_does_not(sqlite_engine, tmp_path):
    url = str(tmp_path / "archive")
    machine = _ten_days_archived(sqlite_engine, url)
    sqlite_engine.dispose()
    source = make_url(sqlite_engine.url).database
    renamed, copied = tmp_path / "moved" / "renamed.db", tmp_path / "copied.db"
    renamed.parent.mkdir()
    shutil.move(source, renamed)  # the same file system: a rename, the file keeps its inode
    shutil.copyfile(renamed, copied)
    moved = make_engine(f"sqlite:///{renamed}")
    archive.run(moved, url=url, before=support.START + timedelta(days=40))
    assert len(support.read_machine(moved, machine, url)) == 40 * 24
    moved.dispose()
    with pytest.raises(ArchiveStoreCopied, match=re.escape(f"this database (SQLite file {copied} ")):
        archive.run(make_engine(f"sqlite:///{copied}"), url=url, before=support.START + timedelta(days=40))


def test_a_sqlite_file_whose_device_number_changed_stays_the_owner(sqlite_engine):
    """A device number is not stable (a reboot renumbers LVM and device-mapper volumes, NFS and container
    mounts); the inode is the file's own: a copy gets another, a reboot keeps it."""
    with sqlite_engine.connect() as conn:
        recorded = archive_owner.of(conn)
    after_reboot = json.dumps(json.loads(recorded) | {"device": json.loads(recorded)["device"] + 7})
    assert archive_owner.same(recorded, after_reboot)
    elsewhere = json.dumps(json.loads(recorded) | {"inode": json.loads(recorded)["inode"] + 1})
    assert not archive_owner.same(recorded, elsewhere)


@pytest.mark.postgres
def test_a_postgresql_user_refused_pg_control_system_tells_a_copy_by_the_databases_name_and_oid(
    postgres_url,
):
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    role = f"sc_plain_{uuid.uuid4().hex[:12]}"
    copy = services.PostgresDatabase()
    try:
        with admin.connect() as conn:
            # A function's privileges belong to its database: this one (and its copy) alone refuse it.
            conn.execute(text("REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC"))
            conn.execute(text(f"CREATE ROLE {role} LOGIN"))
            full = archive_owner.of(conn)
        admin.dispose()
        copy.create(template=make_url(postgres_url).database)
        plain, plain_copy = (
            create_engine(make_url(u).set(username=role, password=None)) for u in (postgres_url, copy.url)
        )
        with plain.connect() as conn, plain_copy.connect() as copy_conn:
            refused, of_copy = archive_owner.of(conn), archive_owner.of(copy_conn)
        plain.dispose()
        plain_copy.dispose()
        assert json.loads(refused)["cluster"] is None and json.loads(full)["cluster"] is not None
        assert archive_owner.same(full, refused)  # recorded with the cluster, read without it: the owner
        assert not archive_owner.same(full, of_copy) and not archive_owner.same(refused, of_copy)
        elsewhere = json.dumps({**json.loads(refused), "database": "staging"})  # another server, same OID
        assert not archive_owner.same(refused, elsewhere)
        assert "cluster not readable (pg_control_system refused)" in archive_owner.described(refused)
    finally:
        copy.drop()  # its sessions cut first
        copy.execute(f"DROP ROLE IF EXISTS {role}")


def test_migration_0026_makes_the_upgraded_database_its_stores_owner(engine, postgres, tmp_path):
    migrate.downgrade(engine, "0025")
    with engine.begin() as conn:  # a store id drawn before the upgrade
        conn.execute(text("INSERT INTO archive_store (id, store) VALUES (1, '0123456789abcdef')"))
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert conn.scalar(select(ArchiveStore.owner)) == archive_owner.of(conn)
    url = str(tmp_path / "archive")
    _ten_days_archived(engine, url)
    with support.restored_copy(engine, postgres, tmp_path) as copy:  # made after the upgrade
        with pytest.raises(ArchiveStoreCopied):
            archive.run(copy, url=url, before=support.START + timedelta(days=40))


def test_claim_archive_on_an_archive_it_cannot_write_says_so_in_one_line(tmp_path):
    """The archive's storage refusing the marker (here a folder where its file should be) is one line, exit 1,
    as `retention run` says it. (An archive URL below a file is refused at start, exit 2.)"""
    env = {
        "SERVICECAST_DATABASE_URL": f"sqlite:///{tmp_path / 'servicecast.db'}",
        "SERVICECAST_ARCHIVE_URL": str(tmp_path / "archive"),
    }
    assert run_cli("retention", "claim-archive", **env).returncode == 0
    (blocker,) = (tmp_path / "archive").glob(f"store=*/{archive_store.MARKER}")
    blocker.unlink()
    blocker.mkdir()
    done = run_cli("retention", "claim-archive", **env)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("servicecast: cannot claim the archive folder: ") and str(blocker) in line
