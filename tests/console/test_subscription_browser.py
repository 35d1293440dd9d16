"""The notifications page in headless Chromium: a technician fills the form, the subscription is the API's;
the admin's catalog page shows the catalog in force."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from api import catalog
from tests.console.conftest import Console
from tests.console.test_browser import sign_in

pytestmark = pytest.mark.slow


def test_a_technician_subscribes_through_the_form_and_the_api_has_it(page: Page, console: Console) -> None:
    world = console.world
    sign_in(page, console, "tech")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Notifications").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alert notifications")
    form = page.get_by_role("form", name="Subscribe to alert notifications")
    form.get_by_label("Customer").select_option(label="acme")
    form.get_by_label("From severity").select_option("high")
    form.get_by_label("Channel").select_option("webhook")
    form.get_by_label("Address").fill("https://hooks.example.com/tech")
    form.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    expect(page.locator(".flash")).to_have_text(
        "Subscribed: high alerts and up, by webhook to https://hooks.example.com/***."
    )
    expect(page.locator("#subscriptions tbody")).to_contain_text("https://hooks.example.com/***")
    console.shoot(page, "notifications")
    listed = httpx.get(
        f"{console.url}/api/v1/notifications/subscriptions", headers=world.headers("tech"), timeout=10
    ).json()
    assert [(s["customer_id"], s["min_severity"], s["channel"], s["address"]) for s in listed] == [
        (world.customers["acme"], "high", "webhook", "https://hooks.example.com/***")
    ]


def test_the_admin_opens_the_catalog_from_the_admin_page(page: Page, console: Console) -> None:
    sign_in(page, console, "admin")
    page.get_by_role("navigation", name="Admin screens").get_by_role("link", name="Catalog").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Service catalog")
    expect(page.locator("#in-force h2")).to_contain_text(f"version {catalog.default().version}")
    expect(page.locator('#downtime tr[data-type="cnc_spindle"]')).to_contain_text("EUR 60,000.00")
    console.shoot(page, "catalog")
