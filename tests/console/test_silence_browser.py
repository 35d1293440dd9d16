"""Browser test (Chromium): a live machine gone silent shows the state and gets a "no data" alert."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Page, expect

from api import policy
from fleet.tables import utcnow
from tests.api.support import NOW
from tests.console.conftest import Console
from tests.console.test_browser import sign_in

LAST = NOW - timedelta(minutes=1)  # the seeded readings' last minute


def test_a_silent_machine_gets_the_state_and_a_no_data_alert(page: Page, console: Console) -> None:
    # acme-pump-0 sent once a minute until a minute before NOW (arrival = reading time): live, then silent.
    world = console.world
    report = policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
    assert report.no_data_opened == 1  # the world's other machines never sent: no state to lose
    machine_id = world.machines["acme"][0]
    sign_in(page, console, "tech")
    page.goto(f"{console.url}/alerts")
    row = page.locator("table.alerts tbody tr").filter(has_text="no data")
    expect(row).to_have_count(1)
    expect(row.get_by_role("link", name="acme-pump-0", exact=True)).to_be_visible()
    row.get_by_role("link", name="Open", exact=True).click()
    expect(page.locator("h1")).to_contain_text("no data on acme-pump-0")
    expect(page.locator("p.explain")).to_have_text(
        f"No message has arrived since {LAST:%Y-%m-%d %H:%M} UTC (silent after 30 min)."
    )
    page.get_by_role("link", name="acme-pump-0", exact=True).first.click()
    expect(page).to_have_url(f"{console.url}/machines/{machine_id}")
    expect(page.locator("#machine-link")).to_have_text(f"silent since {LAST:%Y-%m-%d %H:%M} UTC")
