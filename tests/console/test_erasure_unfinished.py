"""The admin page says which customer's erasure is unfinished, and the command that completes it."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest

from fleet import archive, erasure
from tests.api.support import World, build_world
from tests.console.client import ConsoleClient, sign_in
from tests.lifecycle import support


@pytest.fixture
def world(database_url: str, tmp_path) -> World:
    """The API tests' world with an archive: acme's erasure was killed while it removed its files."""
    world = build_world(
        database_url, archive_url=str(tmp_path / "archive"), webhook_url="http://127.0.0.1:9/crm"
    )
    pair = (world.customers["acme"], world.machines["acme"][0])
    support.write(world.engine, support.rows(pair, seqs=range(300), step_s=600.0))
    archive.run(world.engine, url=world.settings.archive_url, before=support.START + timedelta(days=3))
    support.killed_erasure(database_url, world.settings.archive_url, "acme")
    return world


def test_the_admin_page_shows_an_unfinished_erasure_with_its_command(client: ConsoleClient, world: World):
    sign_in(client, world, "admin")
    page = client.get("/admin").text
    # Before: the page listed acme like globex; only `servicecast customers list` said it was incomplete.
    notes = dict(re.findall(r'<tr data-erasure="([^"]+)">(.*?)</tr>', page, re.S))
    assert list(notes) == ["acme"] and "Erasure unfinished" in notes["acme"]
    assert f"<code>{html.escape(erasure.rerun('acme'))}</code>" in notes["acme"]
