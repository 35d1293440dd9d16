"""The console in headless Chromium: each role's pages, alert and offer workflows, tenancy, charts."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from fleet import registration, telemetry
from fleet.db import session
from fleet.tables import Alert, Machine, Offer, Telemetry, utcnow
from tests.api.routing_support import wait_for
from tests.api.support import NOW
from tests.console.conftest import Console, ConsoleLog
from tests.console.seed import MONTH_MINUTES

pytestmark = pytest.mark.slow


def sign_in(page: Page, console: Console, who: str) -> None:
    """Sign in through the login form with the user's API key."""
    page.goto(f"{console.url}/login")
    page.get_by_label("API key").fill(console.world.tokens[who])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def nav_links(page: Page) -> list[str]:
    return page.locator("header nav a").all_inner_texts()


def test_a_garbage_key_is_refused_and_pages_ask_to_sign_in(
    page: Page, console: Console, browser_log: ConsoleLog
) -> None:
    browser_log.expected_statuses.add(401)
    page.goto(f"{console.url}/alerts")
    expect(page).to_have_url(f"{console.url}/login?next=/alerts")
    page.get_by_label("API key").fill("sc_nothing_here")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown, expired or revoked")
    console.shoot(page, "login")


@pytest.mark.parametrize(
    ("who", "home", "heading", "links"),
    [
        (
            "admin",
            "/admin",
            "Administration",
            ["Alerts", "Fleet", "Offers", "Accounts", "Ledger", "Notifications", "Admin"],
        ),
        ("tech", "/alerts", "Alert queue", ["Alerts", "Fleet", "Notifications"]),
        (
            "am-acme",
            "/offers",
            "Offers inbox",
            ["Alerts", "Fleet", "Offers", "Accounts", "Ledger", "Notifications"],
        ),
        ("cust-acme", "/fleet", "Fleet by risk", ["Fleet", "Offers", "Ledger", "Alerts", "Notifications"]),
    ],
)
def test_each_role_lands_on_its_own_page(
    page: Page, console: Console, who: str, home: str, heading: str, links: list[str]
) -> None:
    sign_in(page, console, who)
    expect(page).to_have_url(f"{console.url}{home}")
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    assert nav_links(page) == links
    if who == "admin":
        expect(page.locator("#customers")).to_contain_text("acme")
        expect(page.locator("#models")).to_contain_text("test-1")
        console.shoot(page, "admin")
    if who == "tech":
        page.goto(f"{console.url}/fleet")
        expect(page.locator("#fleet tbody tr")).to_have_count(6)
        console.shoot(page, "fleet")


def test_field_service_acknowledges_assigns_and_resolves_an_alert(page: Page, console: Console) -> None:
    world = console.world
    alert_id = world.alerts["globex"][0]
    sign_in(page, console, "tech")
    queue = page.locator(f"tr[data-alert='{alert_id}']")
    expect(queue).to_contain_text("critical")
    console.shoot(page, "alerts")
    queue.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#alert-status")).to_contain_text("acknowledged")
    expect(page.get_by_label("Assign to").locator("option:checked")).to_have_text("me (tech)")  # the default
    page.get_by_label("Assign to").select_option(label="me (tech)")
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.locator("#alert-status")).to_contain_text("assigned to tech")
    expect(page.locator(".history")).to_contain_text("assigned by tech to tech")
    page.get_by_label("Confirmed failure").check()
    page.get_by_label("What was found").fill("outer race spalled")
    page.get_by_label("Parts used (comma-separated)").fill("bearing 6204, seal kit")
    console.shoot(page, "alert")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#alert-status")).to_contain_text("resolved")
    expect(page.get_by_role("status")).to_contain_text(f"Alert {alert_id} resolved")
    page.goto(f"{console.url}/alerts?status=resolved")
    expect(page.locator("nav.tabs a[aria-current=page]")).to_have_text("resolved (1)")
    expect(page.locator(f"tr[data-alert='{alert_id}']")).to_contain_text("confirmed fault")
    with session(world.engine) as sess:
        alert = sess.get(Alert, alert_id)
        assert (alert.status, alert.finding, alert.finding_text) == (
            "resolved",
            "confirmed_fault",
            "outer race spalled",
        )
        assert alert.parts_used == ["bearing 6204", "seal kit"]


def test_signing_out_ends_the_session_and_a_copied_cookie_gets_the_sign_in_page(
    page: Page, console: Console, browser_log: ConsoleLog
) -> None:
    browser_log.expected_statuses.add(401)
    sign_in(page, console, "tech")
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "servicecast_session"]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Lax", "/")
    assert console.world.tokens["tech"] not in cookie["value"]
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{console.url}/login")
    page.context.add_cookies([cookie])  # as if it had been copied before the sign-out
    response = page.goto(f"{console.url}/alerts")
    assert response.status == 401
    expect(page.get_by_role("alert")).to_contain_text("Your session has ended")


def test_account_manager_approves_an_offer_and_the_crm_receives_it(page: Page, console: Console) -> None:
    world = console.world
    offer_id = world.offers["acme"][0]
    sign_in(page, console, "am-acme")
    row = page.locator(f"tr[data-offer='{offer_id}']")
    expect(row).to_contain_text("offers allowed")
    console.shoot(page, "offers")
    row.get_by_role("link").first.click()
    expect(page.locator("#offer-status")).to_contain_text("proposed")
    page.get_by_label("Price (EUR)").fill("1234.50")
    console.shoot(page, "offer")
    page.get_by_role("button", name="Approve and send to CRM").click()
    expect(page.locator("#offer-status")).to_contain_text("approved")
    expect(page.locator("#offer-price")).to_contain_text("1,234")
    wait_for(lambda: len(console.receiver.accepted) >= 1, timeout=30, what="the CRM to receive the offer")
    events = [e for e in console.receiver.accepted.values() if e["data"]["offer_id"] == offer_id]
    assert len(events) == 1 and console.receiver.bad_signatures == 0
    assert events[0]["data"]["price"] == {"amount": 1234.5, "currency": "EUR"}
    page.goto(f"{console.url}/accounts/{world.customers['acme']}")
    expect(page.locator("#consent")).to_contain_text("offers allowed")
    console.shoot(page, "account")


def test_a_customer_sees_only_its_own_machines(page: Page, console: Console, browser_log: ConsoleLog) -> None:
    browser_log.expected_statuses.add(404)
    world = console.world
    sign_in(page, console, "cust-acme")
    codes = page.locator("#fleet tbody th").all_inner_texts()
    assert sorted(codes) == [f"acme-pump-{i}" for i in range(3)]
    console.shoot(page, "customer-fleet")
    foreign = world.machines["globex"][0]
    response = page.goto(f"{console.url}/machines/{foreign}")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.locator("main")).not_to_contain_text("globex")


def test_a_machine_page_charts_30_days_of_minute_readings(page: Page, console: Console) -> None:
    # How fast: `python -m benchmarks.console_page` (timing has no place in a unit test).
    machine_id = console.world.machines["acme"][0]
    sign_in(page, console, "tech")
    page.goto(f"{console.url}/machines/{machine_id}?days=30")
    page.locator("figure[data-sensor] svg.chart path.series").nth(2).wait_for()
    expect(page.locator("#chart-summary")).to_contain_text(f"{MONTH_MINUTES} readings")
    key = page.locator("figure.key")
    expect(key).to_have_attribute("data-sensor", "vibration_rms_mm_s")
    expect(key.locator("line.limit")).to_have_count(1)
    # The world's forecast (24 h after NOW) is past by the server's clock: no band drawn, no time to come.
    expect(key.locator("polygon.band")).to_have_count(0)
    expect(key).to_contain_text("was forecast to reach its limit")
    shapes = page.evaluate(CHART_SHAPES)
    assert all(abs(drawn - meant) < 0.02 for drawn, meant, _ in shapes), shapes  # never stretched
    assert min(label for *_, label in shapes) >= 10, shapes  # axis labels at least 10 px high
    points = key.locator("path.series").get_attribute("d").count("L") + 1
    assert 400 <= points <= 480  # downsampled on the server, not 43,200 points
    console.shoot(page, "machine")


# Per chart: drawn width/height, the viewBox's width/height, the smallest tick label's height in px.
CHART_SHAPES = """() => [...document.querySelectorAll('svg.chart')].map(svg => {
  const box = svg.getBoundingClientRect(), view = svg.viewBox.baseVal;
  const labels = [...svg.querySelectorAll('text.tick')].map(t => t.getBoundingClientRect().height);
  return [box.width / box.height, view.width / view.height, Math.min(...labels)];
})"""
UNLABELLED_CONTROLS = """() => [
  ...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
  .map(el => el.outerHTML.slice(0, 80))"""
PAGE_OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


@pytest.mark.parametrize(
    ("who", "paths"),
    [
        ("tech", ["/alerts", "/fleet", "/machines/{m}"]),
        ("am-acme", ["/offers", "/offers/{o}", "/accounts/{c}"]),
        ("admin", ["/admin"]),
    ],
)
def test_pages_fit_a_tablet_and_every_control_has_a_label(
    page: Page, console: Console, who: str, paths: list[str]
) -> None:
    world = console.world
    ids = {"m": world.machines["acme"][0], "o": world.offers["acme"][-1], "c": world.customers["acme"]}
    page.set_viewport_size({"width": 768, "height": 1024})
    sign_in(page, console, who)
    for path in paths:
        page.goto(console.url + path.format(**ids))
        assert page.evaluate(PAGE_OVERFLOW) <= 0, f"{path} scrolls sideways on a tablet"
        assert page.evaluate(UNLABELLED_CONTROLS) == [], path
        assert page.locator("html").get_attribute("lang") == "en"
        for chart in page.locator("svg.chart").all():
            assert chart.get_attribute("aria-label")


def test_one_estimate_on_fleet_list_alert_machine_offer_and_in_the_crm_event(
    page: Page, console: Console
) -> None:
    world = console.world
    offer_id = world.offers["globex"][0]
    with session(world.engine) as sess:
        offer = sess.get(Offer, offer_id)
        machine = sess.get(Machine, offer.machine_id)
        alert_id, machine_id, code = offer.alert_id, machine.id, machine.code
    assert alert_id is not None
    sign_in(page, console, "admin")
    seen = {}
    page.goto(f"{console.url}/fleet")
    row = page.locator("#fleet tbody tr").filter(has=page.get_by_role("link", name=code, exact=True))
    seen["fleet"] = row.locator(".ttf").inner_text()
    page.goto(f"{console.url}/alerts")
    seen["queue"] = page.locator(f"tr[data-alert='{alert_id}'] .ttf").inner_text()
    page.goto(f"{console.url}/alerts/{alert_id}")
    seen["alert"] = page.locator("#alert-ttf .ttf").inner_text()
    page.goto(f"{console.url}/machines/{machine_id}")
    seen["machine"] = page.locator("#machine-ttf .ttf").inner_text()
    page.goto(f"{console.url}/offers/{offer_id}")
    seen["offer"] = page.locator("#offer-ttf .ttf").inner_text()
    page.get_by_role("button", name="Approve and send to CRM").click()
    expect(page.locator("#offer-status")).to_contain_text("approved")
    wait_for(
        lambda: any(e["data"]["offer_id"] == offer_id for e in console.receiver.accepted.values()),
        timeout=30,
        what="the CRM to receive the offer",
    )
    (event,) = [e for e in console.receiver.accepted.values() if e["data"]["offer_id"] == offer_id]
    seen["crm"] = event["data"]["time_to_failure"]["text"]
    assert len(set(seen.values())) == 1, seen
    expected = datetime.fromisoformat(event["data"]["time_to_failure"]["expected"])
    words = "overdue since " if expected <= utcnow() else "failure expected around "
    assert seen["crm"].startswith(words + expected.strftime("%Y-%m-%d %H:%M UTC")), seen["crm"]


def test_an_estimate_already_past_reads_overdue_on_every_page(page: Page, console: Console) -> None:
    world = console.world
    alert_id, machine_id = world.alerts["acme"][0], world.machines["acme"][0]
    sign_in(page, console, "tech")  # its failure was expected 24 h after NOW: long past
    due = NOW + timedelta(hours=24)
    for path, where in (
        ("/fleet", "#fleet"),
        ("/alerts", f"tr[data-alert='{alert_id}']"),
        (f"/alerts/{alert_id}", "#alert-ttf"),
        (f"/machines/{machine_id}", "#machine-ttf"),
    ):
        page.goto(console.url + path)
        texts = page.locator(f"{where} .ttf.overdue").all_inner_texts()
        assert f"overdue since {due:%Y-%m-%d %H:%M} UTC (estimated {NOW:%Y-%m-%d %H:%M} UTC)" in texts, (
            path,
            texts,
        )
    past = page.locator(".ttf:not(.overdue)").all_inner_texts()
    today = f"{utcnow():%Y-%m-%d}"
    days = [(t, re.findall(r"\d{4}-\d\d-\d\d", t.split("(")[0])) for t in past]
    assert not [t for t, found in days if any(d < today for d in found)], past  # no past time as to come


def test_unknown_addresses_and_wrong_methods_answer_console_pages(
    page: Page, console: Console, browser_log: ConsoleLog
) -> None:
    browser_log.expected_statuses.update({404, 405})
    sign_in(page, console, "admin")
    for path, status, heading in (
        ("/no-such-page", 404, "Page not found"),
        ("/admin/users", 405, "That cannot be done from here"),  # e.g. a reload after adding a user
    ):
        answer = page.goto(console.url + path)
        assert answer.status == status and answer.headers["content-type"].startswith("text/html")
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(page.get_by_role("link", name="Back to your start page")).to_have_attribute("href", "/")


def test_revoking_a_users_keys_asks_first_and_cancel_changes_nothing(page: Page, console: Console) -> None:
    sign_in(page, console, "admin")
    revoke = page.locator("form[action='/admin/users/cust-globex/revoke'] button")
    revoke.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Revoke every API key of cust-globex?")
    console.shoot(page, "confirm")
    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(f"{console.url}/admin")
    expect(revoke).to_have_count(1)  # still has its keys
    revoke.click()
    page.get_by_role("button", name="Yes, revoke the keys").click()
    expect(page.get_by_role("status")).to_contain_text("API keys of cust-globex revoked")
    expect(revoke).to_have_count(0)


def test_the_api_docs_render_with_the_network_blocked(page: Page, console: Console) -> None:
    outside: list[str] = []

    def only_the_app(route) -> None:  # noqa: ANN001
        if route.request.url.startswith(console.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_app)
    page.goto(f"{console.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("servicecast")
    expect(page.locator(".opblock").first).to_be_visible()
    assert outside == []
    # ReDoc's own page loads its script from the app too (its sidebar logo is the one outside image).
    redoc = page.request.get(f"{console.url}/redoc").text()
    assert "/docs-files/redoc.standalone.js" in redoc and "cdn." not in redoc


def test_fleet_search_by_machine_serial_customer_and_site_and_paging_past_200_machines(
    page: Page, console: Console
) -> None:
    # Runs last in this module: the 250 machines it adds would change the other tests' fleet pages.
    fleet = [
        {
            "tenant": "initech",
            "customer_name": "Initech",
            "machine": f"initech-{i:04d}",
            "machine_type": "centrifugal_pump",
            "serial": f"SN-{i:05d}",
            "site": "Plant North" if i % 2 else "Plant South",
        }
        for i in range(250)
    ]
    registration.register_machines(engine=console.world.engine, machines=fleet, granted_by="test")
    sign_in(page, console, "admin")
    page.goto(f"{console.url}/fleet")
    codes: list[str] = []
    while True:
        codes += page.locator("#fleet tbody th").all_inner_texts()
        following = page.get_by_role("link", name="Next page")
        if not following.count():
            break
        following.click()
        page.wait_for_load_state()  # the click returns once the next page starts loading, rows half-parsed
    assert len(codes) == len(set(codes)) == 256  # 250 and the world's 6
    expect(page.locator("#fleet-count")).to_have_text("Machines 201–256, highest risk first.")

    def search(words: str) -> list[str]:
        page.goto(f"{console.url}/fleet")
        page.get_by_label("Search").fill(words)
        page.get_by_role("button", name="Filter").click()
        page.wait_for_load_state()
        return page.locator("#fleet tbody th").all_inner_texts()

    assert search("SN-00042") == ["initech-0042"]
    assert search("initech-0007") == ["initech-0007"]
    assert sorted(search("globex")) == [f"globex-pump-{i}" for i in range(3)]
    north = search("plant north")
    page.get_by_role("link", name="Next page").click()
    page.wait_for_load_state()
    north += page.locator("#fleet tbody th").all_inner_texts()
    assert len(north) == 125 and all(int(code[-4:]) % 2 for code in north)
    expect(page.get_by_label("Search")).to_have_value("plant north")  # kept across pages


def test_a_machine_that_stopped_sending_reads_silent_since_its_last_message(
    page: Page, console: Console
) -> None:
    # The world's readings end a minute before NOW and arrived then: long silent by the wall clock.
    machine_id = console.world.machines["acme"][0]
    sign_in(page, console, "tech")
    page.goto(f"{console.url}/fleet")
    row = page.locator("#fleet tbody tr").filter(has=page.get_by_role("link", name="acme-pump-0", exact=True))
    last = f"{NOW - timedelta(minutes=1):%Y-%m-%d %H:%M} UTC"
    expect(row.locator(".badge.link-silent")).to_have_text(f"silent since {last}")
    other = page.locator("#fleet tbody tr").filter(
        has=page.get_by_role("link", name="acme-pump-1", exact=True)
    )
    expect(other.locator(".badge.link-no-data")).to_have_text("no data")
    page.goto(f"{console.url}/machines/{machine_id}")
    expect(page.locator("#machine-link")).to_have_text(f"silent since {last}")
    expect(page.locator("dl.facts")).to_contain_text(f"readings of {last}, received {last}")


def test_an_admin_replays_the_quarantine_from_the_console(page: Page, console: Console) -> None:
    world = console.world
    held = {"seq": 900_001, "ts": "2026-11-23T08:00:00.000Z", "readings": {"flow_m3_h": 119.5}}
    payload = json.dumps(held).encode()
    row = {
        "topic": "fleet/acme/acme-pump-2/telemetry",
        "payload": payload,
        "reason": "unknown_machine",
        "detail": "acme-pump-2 was not registered yet",
        "digest": hashlib.sha256(payload).hexdigest(),
        "received_at": datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
    }
    with world.engine.begin() as conn:
        assert telemetry.insert_quarantine(conn, [row]) == 1
    sign_in(page, console, "admin")
    page.get_by_role("link", name="Quarantine").click()
    page.get_by_role("link", name="unknown machine (1)").click()
    expect(page.locator("#quarantine tbody tr")).to_have_count(1)
    expect(page.locator("#quarantine")).to_contain_text("acme-pump-2 was not registered yet")
    console.shoot(page, "quarantine")
    page.get_by_role("button", name="Replay these messages").click()
    expect(page.get_by_role("status")).to_contain_text("Replayed 1 messages: 1 stored")
    expect(page.locator("#quarantine")).to_contain_text("Nothing held back.")
    with session(world.engine) as sess:
        stored = sess.scalar(select(Telemetry).where(Telemetry.seq == 900_001))
        assert stored.machine_id == world.machines["acme"][2] and stored.readings == {"flow_m3_h": 119.5}


def test_the_audit_trail_filters_by_actor_object_and_time(
    page: Page, console: Console, browser_log: ConsoleLog
) -> None:
    browser_log.expected_statuses.add(422)
    sign_in(page, console, "admin")
    page.goto(f"{console.url}/admin/audit")
    page.get_by_label("Who").fill("admin")
    page.get_by_label("Object").select_option(label="user")
    page.get_by_label("From").fill(utcnow().strftime("%Y-%m-%d"))
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#audit tbody tr")
    expect(rows.first).to_contain_text("sign in")
    assert all("admin" in r and "user" in r for r in rows.all_inner_texts())
    console.shoot(page, "audit")
    page.get_by_label("Number").fill("seven")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#subject-id-error")).to_have_text("A number, e.g. 42.")
    expect(page.get_by_label("Number")).to_have_value("seven")  # what was typed is kept
    expect(page.get_by_label("Who")).to_have_value("admin")


def test_a_form_error_is_named_beside_its_field_and_keeps_what_was_typed(
    page: Page, console: Console, browser_log: ConsoleLog
) -> None:
    browser_log.expected_statuses.add(422)
    sign_in(page, console, "admin")
    form = page.locator("#add-user")
    form.get_by_label("Name").fill("erin")
    form.locator("select[name=role]").select_option(label="account manager")
    form.get_by_label("Accounts (for account managers)").fill("acme, nosuchco")
    form.get_by_label("E-mail").fill("erin@example.com")
    form.get_by_role("button", name="Add user").click()
    expect(page.locator("#accounts-error")).to_contain_text("nosuchco")
    assert "_" not in page.locator("#accounts-error").inner_text()  # plain words, no internal names
    expect(form.get_by_label("Name")).to_have_value("erin")
    expect(form.get_by_label("Accounts (for account managers)")).to_have_value("acme, nosuchco")
    expect(form.get_by_label("E-mail")).to_have_value("erin@example.com")
    expect(form.locator("select[name=role]")).to_have_value("account_manager")
    form.get_by_label("Accounts (for account managers)").fill("acme")
    form.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("status")).to_contain_text("API key for erin")
