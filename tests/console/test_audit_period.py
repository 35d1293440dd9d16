"""The audit page's period filter takes every day of the calendar."""

from __future__ import annotations

import re

from tests.api.support import World
from tests.console.client import ConsoleClient, sign_in


def test_an_audit_period_until_the_last_day_of_the_calendar_shows_everything(
    client: ConsoleClient, world: World
) -> None:
    sign_in(client, world, "admin")
    everything = client.get("/admin/audit")
    assert everything.status_code == 200
    rows = re.findall(r"<tr>.*?</tr>", everything.text, re.S)
    assert len(rows) > 1
    for until in ("9999-12-31", "9999-12-31T23:59"):
        page = client.get(f"/admin/audit?since=2000-01-01&until={until}")
        assert page.status_code == 200, page.text
        assert re.findall(r"<tr>.*?</tr>", page.text, re.S) == rows


def test_an_audit_period_ending_before_it_starts_is_a_problem_of_its_to_day(
    client: ConsoleClient, world: World
) -> None:
    sign_in(client, world, "admin")
    page = client.get("/admin/audit?since=2026-11-10&until=2026-11-09")
    assert page.status_code == 422
    assert '<span class="field-error">Not before the From day.</span>' in page.text
    assert client.get("/admin/audit?since=2026-11-10&until=2026-11-10").status_code == 200  # one day
