"""A killed customer erasure shows in the API's customer answers, with the command that completes it."""

from __future__ import annotations

from datetime import timedelta

from api.app import API_PREFIX
from fleet import archive, erasure
from tests.api.support import build_world
from tests.lifecycle import support


def test_the_customers_answer_names_an_unfinished_erasure_and_its_command(world_url, tmp_path, caplog):
    world = build_world(world_url, archive_url=str(tmp_path / "archive"))
    pair = (world.customers["acme"], world.machines["acme"][0])
    support.write(world.engine, support.rows(pair, seqs=range(300), step_s=600.0))
    archive.run(world.engine, url=world.settings.archive_url, before=support.START + timedelta(days=3))
    support.killed_erasure(world_url, world.settings.archive_url, "acme")

    with caplog.at_level("WARNING", logger="fleet.erasure_ledger"), world.client() as client:
        listed = client.get(f"{API_PREFIX}/customers", headers=world.headers("admin")).json()
        one = client.get(f"{API_PREFIX}/customers/{world.customers['acme']}", headers=world.headers("admin"))
    # Before: no field said so; only `servicecast customers list` showed the erasure was incomplete.
    by_tenant = {c["tenant"]: c["erasure_unfinished"] for c in listed}
    assert by_tenant == {"acme": erasure.rerun("acme"), "globex": None}
    assert one.json()["erasure_unfinished"] == erasure.rerun("acme")
    # The API starts on it (the erasure began in this database: no restore), saying so once, with the command.
    assert [r.getMessage() for r in caplog.records if "did not complete" in r.getMessage()] == [
        f"the erasure of acme began and did not complete: `{erasure.rerun('acme')}` completes it"
    ]
