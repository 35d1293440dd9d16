"""Issue 17 Must-show 1 on the demo itself: `servicecast demo` as `make demo` runs it, walked in Chromium.

One alert of the demo fleet that has an offer goes fleet list → alert → machine → offer → the demo's CRM
receiver; every step must show the same time to failure (value and band). No page of the walk shows an
estimate already past as a time to come.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from api import estimate, offers
from fleet.db import make_engine
from fleet.tables import Alert, Machine, Prediction, utcnow
from servicecast import screenshots
from servicecast.screenshots import DemoServer, sign_in

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """`servicecast demo` in a temporary folder on a free port, serving until the module's tests end."""
    with screenshots.served_demo(tmp_path_factory.mktemp("demo")) as server:
        yield server


def _walked(demo: DemoServer) -> tuple[dict[str, int], str, estimate.TimeToFailure]:
    """The demo's offer on an alert, its machine's code and the estimate of the alert's prediction."""
    ids = screenshots.offer_on_an_alert(demo.database_url)
    engine = make_engine(demo.database_url)
    with engine.connect() as conn:
        code = conn.scalar(select(Machine.code).where(Machine.id == ids["machine"]))
        made_on = conn.scalar(select(Alert.last_prediction_id).where(Alert.id == ids["alert"]))
        prediction = conn.execute(select(Prediction).where(Prediction.id == made_on)).first()
    engine.dispose()
    found = estimate.of(Prediction(**prediction._mapping))
    assert found is not None, "the demo's alert carries no time to failure"
    return ids, code, found


def test_one_demo_alert_with_an_offer_shows_one_time_to_failure_from_fleet_list_to_the_crm(
    page: Page, demo: DemoServer
) -> None:
    ids, code, found = _walked(demo)
    seen = {}
    sign_in(page, demo.url, demo.keys["demo-tech"])
    page.goto(f"{demo.url}/fleet?q={code}")
    row = page.locator("#fleet tbody tr").filter(has=page.get_by_role("link", name=code, exact=True))
    seen["fleet"] = row.locator(".ttf").inner_text()
    page.goto(f"{demo.url}/alerts")
    queued = page.locator(f"tr[data-alert='{ids['alert']}']")
    seen["queue"] = queued.locator(".ttf").inner_text()
    queued.get_by_role("link", name="Open", exact=True).click()
    seen["alert"] = page.locator("#alert-ttf .ttf").inner_text()
    page.locator("h1").get_by_role("link", name=code, exact=True).click()
    expect(page).to_have_url(f"{demo.url}/machines/{ids['machine']}")
    seen["machine"] = page.locator("#machine-ttf .ttf").inner_text()

    sign_in(page, demo.url, demo.keys["demo-am"])
    page.goto(f"{demo.url}/offers/{ids['offer']}")
    seen["offer"] = page.locator("#offer-ttf .ttf").inner_text()
    assert seen["offer"] in page.locator("textarea#reason").input_value()  # the text the customer reads
    page.get_by_role("button", name="Approve and send to CRM").click()
    expect(page.locator("#offer-status")).to_contain_text("approved")

    sign_in(page, demo.url, demo.keys["demo-admin"])  # the router delivers; the demo's CRM shows the event
    received = page.locator(f"#crm-events tr[data-offer='{ids['offer']}'] td.crm-ttf")
    for _ in range(60):
        page.goto(f"{demo.url}/admin/crm")
        if received.count():
            break
        page.wait_for_timeout(500)
    seen["crm"] = received.inner_text()

    assert len(set(seen.values())) == 1, seen
    sent = datetime.fromisoformat(received.get_attribute("data-expected").replace("Z", "+00:00"))
    assert abs(sent - found.expected).total_seconds() < 1  # the event's time is the estimate's
    now = utcnow()  # the demo server's clock
    assert seen["crm"] == estimate.words(found, now)  # the value and its band, as the one wording says it
    if not found.overdue(now):
        assert f"around {estimate.stamp(found.expected)} ({estimate.band(found)};" in seen["crm"]


def test_no_page_of_the_demo_shows_an_estimate_already_past_as_a_time_to_come(
    page: Page, demo: DemoServer
) -> None:
    # Any live offer: the walk above, if it ran first on this demo, approved the one it found proposed.
    ids = screenshots.offer_on_an_alert(demo.database_url, offers.LIVE_STATES)
    walked = 0
    for user, paths in (
        ("demo-tech", ["/fleet", "/alerts", f"/alerts/{ids['alert']}", f"/machines/{ids['machine']}"]),
        ("demo-am", ["/offers", f"/offers/{ids['offer']}", f"/accounts/{ids['customer']}"]),
        ("demo-customer", ["/"]),
    ):
        sign_in(page, demo.url, demo.keys[user])
        for path in paths:
            page.goto(demo.url + path)
            now = utcnow()
            for span in page.locator(".ttf:not([data-expected=''])").all():
                stamp, text = span.get_attribute("data-expected"), span.inner_text()
                expected = datetime.strptime(stamp, "%Y-%m-%d %H:%M UTC").replace(tzinfo=UTC)
                if "overdue" in (span.get_attribute("class") or ""):
                    assert text.startswith(f"overdue since {stamp}"), (path, text)
                else:  # to the minute the page shows: a time to come is not before this minute
                    assert expected >= now.replace(second=0, microsecond=0), (path, text)
                    assert text.startswith(f"failure expected around {stamp}"), (path, text)
                walked += 1
    assert walked >= 5  # the fleet list, the queue, the alert, the offer and the machine at least
