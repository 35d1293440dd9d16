"""Two rollup refreshes at once (a cron job and a retention run's): both finish, with the rollups of one."""

from __future__ import annotations

import threading

from sqlalchemy import select, text

from fleet import rollups
from fleet.tables import Rollup
from tests import services
from tests.lifecycle import support


def _rollups(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r) for r in conn.execute(select(Rollup.__table__).order_by(*Rollup.__table__.primary_key))
        ]


def test_two_refreshes_at_once_both_finish_with_the_rollups_one_makes(postgres_url, tmp_path):
    with services.migrated_engine(postgres_url) as pg:
        ids = support.register(pg, "acme", ["p1", "p2"])
        for n, pair in enumerate(ids.values()):
            support.write(pg, support.rows(pair, seqs=range(1500), step_s=600.0, seed=n))  # 250 hours each
        url = str(tmp_path / "archive")
        failures: list[BaseException] = []

        def refresh() -> None:
            try:
                rollups.refresh(pg, archive_url=url, batch=7)  # many batches, a day split between two
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                failures.append(exc)

        runs = [threading.Thread(target=refresh) for _ in range(2)]
        for thread in runs:
            thread.start()
        for thread in runs:
            thread.join()
        assert (
            failures == []
        )  # the old code: duplicate key value violates unique constraint "pk_telemetry_rollups"
        together = _rollups(pg)
        with pg.begin() as conn:  # every hour marked again, and refreshed by one refresh alone
            conn.execute(
                text(
                    "INSERT INTO rollup_dirty (machine_id, hour, customer_id) SELECT DISTINCT machine_id, "
                    "date_trunc('hour', ts), customer_id FROM telemetry"
                )
            )
        rollups.refresh(pg, archive_url=url)
        assert together == _rollups(pg) and len(together) > 0
