"""Browser test (Chromium, 1366 px wide): every input's placeholder hint is readable whole, not cut off."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.console.conftest import Console
from tests.console.test_browser import sign_in

# The hint laid out as the field's text (same font), measured against the field: only a browser knows both.
MEASURE = """el => {
  const typed = el.value;
  el.value = el.placeholder;
  const sizes = [el.placeholder, el.scrollWidth, el.clientWidth];
  el.value = typed;
  return sizes;
}"""


@pytest.mark.parametrize(
    ("who", "paths"),
    [
        ("tech", ["/fleet", "/notifications"]),
        ("admin", ["/admin", "/admin/audit", "/fleet"]),
    ],
)
def test_every_placeholder_fits_its_input(page: Page, console: Console, who: str, paths: list[str]) -> None:
    sign_in(page, console, who)
    cut = []
    for path in paths:
        page.goto(console.url + path)
        fields = page.locator("input[placeholder]:visible")
        assert fields.count(), path
        for i in range(fields.count()):
            hint, needed, room = fields.nth(i).evaluate(MEASURE)
            if needed > room:
                cut.append((path, hint, needed, room))
    assert cut == []
