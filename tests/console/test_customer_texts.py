"""Offer titles and texts carry no internal names or ids, and their prices keep their cents."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from api import catalog, estimate

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
