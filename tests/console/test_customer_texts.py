"""Customer-facing texts (offer titles and texts, the customer's pages) carry no internal names or ids."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from api import catalog, estimate
from tests.console.conftest import Console

NOW = datetime(2026, 11, 23, 8, tzinfo=UTC)
SNAKE = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")
IDS = re.compile(r"#\d+|\bid=|\bid \d+|\bids?:\s*\d+", re.I)
MONEY_EN = re.compile(r"EUR\s?\d[\d.,]*")
MONEY_DE = re.compile(r"\d[\d.,]*\s?EUR")
CONTEXTS = {
    "none": None,
    "band": estimate.TimeToFailure(
        NOW, NOW + timedelta(hours=130), NOW + timedelta(hours=90), NOW + timedelta(days=8)
    ),
    "no band": estimate.TimeToFailure(NOW, NOW + timedelta(hours=5), None, None),
    "overdue": estimate.TimeToFailure(NOW - timedelta(days=2), NOW - timedelta(hours=3), None, None),
}
MACHINE_TYPES = ("centrifugal_pump", "air_compressor", "cnc_spindle", "gear_box")


def problems(text: str) -> list[str]:
    """Snake-case names, internal ids and money without its cents in a customer-facing text."""
    found = [f"name {m}" for m in SNAKE.findall(text)] + [f"id {m}" for m in IDS.findall(text)]
    for amount in MONEY_EN.findall(text):
        if not re.fullmatch(r"EUR \d{1,3}(,\d{3})*\.\d{2}", amount.rstrip(".,")):
            found.append(f"money {amount}")
    for amount in MONEY_DE.findall(text):
        if not re.fullmatch(r"\d{1,3}(\.\d{3})*,\d{2} EUR", amount.lstrip(".,")):
            found.append(f"money {amount}")
    return found


@pytest.mark.parametrize("language", catalog.LANGUAGES)
@pytest.mark.parametrize("context", CONTEXTS)
def test_offer_titles_and_texts_read_as_prose_with_prices_in_cents(language: str, context: str) -> None:
    cat = catalog.default()
    modes = [*cat.failures[language], "unknown", "gearbox_backlash"]
    for item in cat.items:
        for machine_type in MACHINE_TYPES:
            for mode in modes:
                title, text = catalog.render(
                    item,
                    language=language,
                    machine="acme-pump-7",
                    machine_type=machine_type,
                    mode=mode,
                    risk=0.734,
                    time_to_failure=CONTEXTS[context],
                    now=NOW,
                    price=1850.5,
                    value=12_000.0,
                )
                assert not problems(title + "\n" + text), (problems(title + "\n" + text), title, text)
                assert catalog.format_money(1850.5, cat.currency, language) in text
                assert estimate.words(CONTEXTS[context], NOW, language) in text, text


def visible_text(page: str) -> str:
    """What a person reads on the page: text outside tags, plus titles, labels, alt texts and placeholders."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    said = re.findall(r'\b(?:title|aria-label|alt|placeholder)="([^"]*)"', page)
    return html.unescape(" ".join([re.sub(r"<[^>]+>", " ", page), *said]))


@pytest.mark.slow
def test_the_customers_pages_show_no_internal_names_or_ids_and_prices_with_cents(console: Console) -> None:
    with httpx.Client(base_url=console.url, follow_redirects=True, timeout=30) as client:
        signed_in = client.post("/login", data={"api_key": console.world.tokens["cust-acme"]})
        assert signed_in.status_code == 200
        world = console.world
        direct = [f"/machines/{m}" for m in world.machines["acme"]] + [
            f"/offers/{o}" for o in world.offers["acme"]
        ]
        todo, seen, found = [str(signed_in.url), *(console.url + p for p in direct)], set(), {}
        while todo and len(seen) < 80:
            url = todo.pop(0)
            path = urlsplit(url).path
            if path in seen:
                continue
            seen.add(path)
            response = client.get(path)
            if response.status_code != 200 or "text/html" not in response.headers["content-type"]:
                continue
            if trouble := problems(visible_text(response.text)):
                found[path] = trouble
            for link in re.findall(r'<a\b[^>]*\bhref="([^"#?]+)', response.text):
                target = urljoin(console.url + path, html.unescape(link))
                if target.startswith(console.url) and not re.match(
                    r"/(logout|static|docs|api)\b", urlsplit(target).path
                ):
                    todo.append(target)
    assert {"/fleet", "/offers", "/alerts"} <= seen, sorted(seen)
    assert not found, found
