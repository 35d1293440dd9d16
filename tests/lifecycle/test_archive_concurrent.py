"""Two archive runs at once: the second one's orphan sweep must not take the first one's written file."""

from __future__ import annotations

import functools
import threading
from datetime import timedelta

from sqlalchemy import func, select

from fleet import archive, erasure, history
from fleet.tables import Customer
from tests import services
from tests.lifecycle import support


def test_a_sweep_during_a_move_leaves_the_file_being_committed(engine, tmp_path):
    machines, before_move = support.two_pumps(engine)
    url = str(tmp_path / "archive")
    swept = []

    def second_run_starts(_relative: str) -> None:
        # What a second `retention run` does first, while this run's file awaits its commit.
        swept.append(archive.remove_orphans(engine, archive.location(url)))

    report = archive.run(
        engine,
        url=url,
        before=support.START + timedelta(days=30),
        max_rows=400,
        after_write=second_run_starts,
    )
    assert report.rows == len(before_move) and swept == [0, 0]
    with engine.connect() as conn:
        after = history.read_rows(conn, machine_ids=machines, archive_url=url)
    assert after[["machine_id", "seq"]].values.tolist() == before_move[["machine_id", "seq"]].values.tolist()


def test_a_second_run_waits_for_the_first_and_finds_nothing_left(postgres_url, tmp_path):
    with services.migrated_engine(postgres_url) as pg:
        ids = support.register(pg, "acme", ["p1"])
        support.write(pg, support.rows(ids["p1"], seqs=range(400)))
        url, before = str(tmp_path / "archive"), support.START + timedelta(days=30)
        second: list[archive.Report] = []
        runner = threading.Thread(target=lambda: second.append(archive.run(pg, url=url, before=before)))

        def start_the_second_run(_relative: str) -> None:
            runner.start()
            while runner.is_alive() and not services.waiting_on_advisory_lock(pg):
                runner.join(0.05)

        first = archive.run(pg, url=url, before=before, after_write=start_the_second_run)
        runner.join()
        assert (first.rows, second[0].rows, second[0].orphans_removed) == (400, 0, 0)
        with pg.connect() as conn:
            stored = history.read_rows(conn, machine_ids=[ids["p1"][1]], archive_url=url)
        assert list(stored["seq"]) == list(range(400))


def test_an_erasure_during_a_move_leaves_no_file_of_the_customer(postgres_url, tmp_path):
    with services.migrated_engine(postgres_url) as pg:
        ids = support.register(pg, "zeta-erase", ["p1"])
        support.write(pg, support.rows(ids["p1"], seqs=range(400)))
        url = str(tmp_path / "archive")
        erase = functools.partial(
            erasure.erase, pg, tenant="zeta-erase", confirm="zeta-erase", by="cli:test", archive_url=url
        )
        eraser = threading.Thread(target=erase, kwargs={"now": support.START})

        def erase_meanwhile(_relative: str) -> None:
            eraser.start()
            while eraser.is_alive() and not services.waiting_on_advisory_lock(pg):
                eraser.join(0.05)

        archive.run(pg, url=url, before=support.START + timedelta(days=30), after_write=erase_meanwhile)
        eraser.join()
        with pg.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Customer)) == 0
        assert support.archived_files(url) == []
