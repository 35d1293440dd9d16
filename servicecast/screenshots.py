"""README screenshots from the demo itself: `python -m servicecast.screenshots [folder]`.

Runs `servicecast demo` (as `make demo` does) in a temporary folder on a free port, signs in as each demo
role in headless Chromium (the browser the console tests drive) and saves 1366×768 PNGs, by default into
docs/screenshots/. The same `served_demo` serves the browser test that walks a demo alert end to end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib import error, request

from fleet import subprocesses

ROOT = Path(__file__).resolve().parents[1]
VIEWPORT = {"width": 1366, "height": 768}
# Debian's Chromium run as root in a container: no sandbox, and none of the background calls to Google.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """The Chromium to drive: SERVICECAST_CHROMIUM, else Debian's."""
    return (
        os.environ.get("SERVICECAST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )


@dataclass(frozen=True)
class DemoServer:
    """A running `servicecast demo`: its address, the database it built and the API key of each demo user."""

    url: str
    database_url: str
    keys: dict[str, str]
    log: Path


@contextmanager
def served_demo(folder: Path, *, timeout_s: float = 600.0) -> Iterator[DemoServer]:
    """`servicecast demo` run in `folder` (its SQLite file and var/) on a free port; stopped with Ctrl-C."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    database_url = f"sqlite:///{folder / 'demo.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    env |= {"SERVICECAST_DATABASE_URL": database_url, "SERVICECAST_API_PORT": str(port)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    log = folder / "demo.log"
    with log.open("wb") as out:
        demo = subprocesses.popen(
            [sys.executable, "-m", "servicecast", "demo"], cwd=folder, env=env, stdout=out, stderr=out
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(demo, f"{url}/readyz", log, deadline=time.monotonic() + timeout_s)
            lines = (folder / "var" / "demo-keys.txt").read_text().splitlines()
            yield DemoServer(url, database_url, dict(line.split("\t") for line in lines), log)
        finally:
            if demo.poll() is None:
                demo.send_signal(signal.SIGINT)
                try:
                    demo.wait(30)
                except subprocess.TimeoutExpired:
                    demo.kill()
                    demo.wait()


def _wait_ready(demo: subprocess.Popen, ready: str, log: Path, *, deadline: float) -> None:
    while time.monotonic() < deadline:
        if demo.poll() is not None:
            raise RuntimeError(f"servicecast demo ended with {demo.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with request.urlopen(ready, timeout=1) as answer:
                if answer.status == 200:
                    return
        except (error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"servicecast demo not ready in time:\n{log.read_text()[-4000:]}")


def sign_in(page, url: str, key: str) -> None:  # noqa: ANN001 - a Playwright page
    """Sign in through the console's form with an API key."""
    page.goto(f"{url}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def offer_on_an_alert(database_url: str, states: tuple[str, ...] = ("proposed",)) -> dict[str, int]:
    """The demo's first offer in one of `states` (by default still proposed, so demo-am can approve it) on an
    alert of an account demo-am looks after, with its alert, machine and customer ids."""
    from sqlalchemy import select

    from fleet.db import make_engine
    from fleet.tables import Customer, Offer
    from servicecast.demo import DEMO_USERS

    accounts = next(accounts for name, _, _, accounts, _ in DEMO_USERS if name == "demo-am")
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                select(Offer.id, Offer.alert_id, Offer.machine_id, Offer.customer_id)
                .join(Customer, Customer.id == Offer.customer_id)
                # Not any offer: the live policy withdraws an unsent offer when its machine's risk falls.
                .where(Offer.alert_id.is_not(None), Offer.status.in_(states), Customer.tenant.in_(accounts))
                .order_by(Offer.id)
                .limit(1)
            ).first()
    finally:
        engine.dispose()
    if found is None:
        raise LookupError(f"the demo has no {' or '.join(states)} offer on an alert of {', '.join(accounts)}")
    return dict(zip(("offer", "alert", "machine", "customer"), found, strict=True))


# (file name, demo user, path, what the README says of it); {offer}, {alert}, {machine} are filled in
SHOTS = (
    ("login", None, "/login", "Sign-in with an API key"),
    ("alerts", "demo-tech", "/alerts", "Alert queue (field service)"),
    ("alert", "demo-tech", "/alerts/{alert}", "An alert with its time to failure and evidence"),
    ("machine", "demo-tech", "/machines/{machine}?days=30", "Machine page: 30 days of sensors, the forecast"),
    ("fleet", "demo-tech", "/fleet", "Fleet by risk, with search and connectivity"),
    ("offers", "demo-am", "/offers", "Offers inbox (account manager)"),
    ("offer", "demo-am", "/offers/{offer}", "An offer on that alert, before approval"),
    ("account", "demo-am", "/accounts/{customer}", "One account: consent, machines, alerts, offers"),
    ("customer-fleet", "demo-customer", "/", "A customer's own fleet"),
    ("admin", "demo-admin", "/admin", "Consent, users and model versions"),
    ("quarantine", "demo-admin", "/admin/quarantine", "The quarantine: the live part's bad messages"),
    ("ledger", "demo-admin", "/ledger", "The ledger of the whole book"),
    ("catalog", "demo-admin", "/admin/catalog", "The service catalog in force and its versions"),
    ("notifications", "demo-tech", "/notifications", "A technician's alert notification subscriptions"),
)
# Taken after the account manager approved that offer and the router delivered it to the demo's CRM.
AFTER_APPROVAL = (
    ("crm", "demo-admin", "/admin/crm", "The demo's CRM receiver with the delivered offer"),
    ("audit", "demo-admin", "/admin/audit?subject=offer", "The audit trail, filtered to offers"),
)


def take(server: DemoServer, folder: Path) -> list[Path]:
    """Every screenshot of SHOTS from the running demo, then approve the offer and take AFTER_APPROVAL."""
    from playwright.sync_api import sync_playwright

    ids = offer_on_an_alert(server.database_url)
    folder.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            saved = [_shoot(browser, server, folder, shot, ids) for shot in SHOTS]
            _approve(browser, server, ids["offer"])
            saved += [_shoot(browser, server, folder, shot, ids) for shot in AFTER_APPROVAL]
        finally:
            browser.close()
    return saved


def _shoot(browser, server: DemoServer, folder: Path, shot: tuple, ids: dict[str, int]) -> Path:  # noqa: ANN001
    name, user, path, _ = shot
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        if user is not None:
            sign_in(page, server.url, server.keys[user])
        answer = page.goto(server.url + path.format(**ids))
        if answer is None or answer.status != 200:
            raise RuntimeError(f"{path} answered {answer and answer.status}")
        page.screenshot(path=str(folder / f"{name}.png"))
    finally:
        context.close()
    return folder / f"{name}.png"


def _approve(browser, server: DemoServer, offer_id: int, *, timeout_s: float = 60.0) -> None:  # noqa: ANN001
    """The account manager approves the offer; returns once the demo's CRM has received it."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        sign_in(page, server.url, server.keys["demo-am"])
        page.goto(f"{server.url}/offers/{offer_id}")
        page.get_by_role("button", name="Approve and send to CRM").click()
        page.wait_for_load_state()
        sign_in(page, server.url, server.keys["demo-admin"])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            page.goto(f"{server.url}/admin/crm")
            if page.locator(f"tr[data-offer='{offer_id}']").count():
                return
            time.sleep(0.5)
        raise TimeoutError(f"the demo's CRM did not receive offer {offer_id}")
    finally:
        context.close()


def main(argv: list[str]) -> int:
    """Run the demo in a temporary folder and save the screenshots."""
    target = Path(argv[0]) if argv else ROOT / "docs" / "screenshots"
    with tempfile.TemporaryDirectory(prefix="servicecast-screenshots-") as tmp:
        with served_demo(Path(tmp)) as server:
            for path in take(server, target):
                print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
