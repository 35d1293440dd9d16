"""A killed customer erasure shows in the API's customer answers, with the command that completes it."""

from __future__ import annotations

from datetime import timedelta

from api.app import API_PREFIX
from fleet import archive, erasure
from tests.api.support import build_world
from tests.lifecycle import support


def test_the_customers_answer_names_an_unfinished_erasure_and_its_command(database_url, tmp_path):
    world = build_world(database_url, archive_url=str(tmp_path / "archive"))
    pair = (world.customers["acme"], world.machines["acme"][0])
    support.write(world.engine, support.rows(pair, seqs=range(300), step_s=600.0))
    archive.run(world.engine, url=world.settings.archive_url, before=support.START + timedelta(days=3))
    support.killed_erasure(database_url, world.settings.archive_url, "acme")

    with world.client() as client:
        listed = client.get(f"{API_PREFIX}/customers", headers=world.headers("admin")).json()
        one = client.get(f"{API_PREFIX}/customers/{world.customers['acme']}", headers=world.headers("admin"))
    # Before: no field said so; only `servicecast customers list` showed the erasure was incomplete.
    by_tenant = {c["tenant"]: c["erasure_unfinished"] for c in listed}
    assert by_tenant == {"acme": erasure.rerun("acme"), "globex": None}
    assert one.json()["erasure_unfinished"] == erasure.rerun("acme")
