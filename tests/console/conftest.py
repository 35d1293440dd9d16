"""Real parts for console tests: the app served by uvicorn, the router, a CRM stand-in, headless Chromium."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from api.app import create_app
from fleet import subprocesses
from servicecast.screenshots import CHROMIUM_ARGS, VIEWPORT, chromium_path
from tests.api.routing_support import SECRET, WebhookReceiver
from tests.api.support import World, build_world
from tests.console.client import ConsoleClient
from tests.console.seed import build_console_world
from tests.ingest.support import START_S
from tests.services import free_port, unavailable, wait_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(database_url: str) -> World:
    """The API tests' world, with a CRM webhook nobody listens on."""
    return build_world(database_url, webhook_url="http://127.0.0.1:9/crm")


@pytest.fixture
def client(world: World) -> Iterator[ConsoleClient]:
    """A console client on the world's app; test modules with a world of their own override both."""
    with ConsoleClient(create_app(world.settings)) as client:
        yield client


@dataclass
class Console:
    """The served console: its base URL, the world behind it, and the CRM stand-in."""

    url: str
    world: World
    receiver: WebhookReceiver
    screenshots: Path

    def shoot(self, page, name: str) -> Path:  # noqa: ANN001
        """Save a 1366×768 screenshot of the page for the README."""
        path = self.screenshots / f"{name}.png"
        page.screenshot(path=str(path))
        return path


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The app in its own uvicorn process on a seeded SQLite file, with `servicecast route` beside it."""
    tmp = tmp_path_factory.mktemp("console")
    database_url = f"sqlite:///{tmp / 'console.db'}"
    receiver = WebhookReceiver().start()
    port = free_port()
    settings = {
        "webhook_url": receiver.url,
        "webhook_secret": SECRET,
        "public_url": f"http://127.0.0.1:{port}",
        "route_backoff_base_s": "0.05",
    }
    world = build_console_world(database_url, **settings)
    world.engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    env.update({f"SERVICECAST_{k.upper()}": str(v) for k, v in settings.items()})
    env.update(
        SERVICECAST_DATABASE_URL=database_url,
        SERVICECAST_API_PORT=str(port),
        SERVICECAST_LOG_LEVEL="WARNING",
    )
    log = (tmp / "servers.log").open("wb")
    # The router polls the outbox for the module's whole life: every 0.1 s cost 3.4 % of a core idle, every
    # 0.5 s 0.7 %; a test waits up to 30 s for a delivery.
    servers = [
        subprocesses.popen(
            [sys.executable, "-m", "servicecast", cmd, *args], env=env, cwd=ROOT, stdout=log, stderr=log
        )
        for cmd, args in (("api", ()), ("route", ("--poll", "0.5")))
    ]
    screenshots = Path(os.environ.get("SERVICECAST_SCREENSHOT_DIR", ROOT / "var" / "screenshots"))
    screenshots.mkdir(parents=True, exist_ok=True)
    try:
        wait_port(port, timeout=START_S)
        yield Console(f"http://127.0.0.1:{port}", world, receiver, screenshots)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(15)
        receiver.stop()
        log.close()
        # A 500 in a browser test shows only "Internal Server Error": report the servers' traceback.
        text = (tmp / "servers.log").read_text(errors="replace")
        if "Traceback" in text:
            print(f"servers.log of the console app:\n{text[-20_000:]}")


EXPECT_TIMEOUT_MS = 30_000  # as long as Playwright's own default for an action


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium driven by Playwright; CI must have it (`make test` installs Debian's)."""
    path = chromium_path()
    if path is None:
        unavailable("Chromium (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    # Playwright's 5 s for a web-first assertion is a wait, not a figure under test: in the clean-clone CI of
    # 49438cd (-n 2 on 2 cores) Swagger UI's page had not rendered its title after 5 s (1.7 s here alone).
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class ConsoleLog:
    """What the browser reported; a test may expect one HTTP error status it provokes on purpose."""

    problems: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)

    def on_console(self, msg) -> None:  # noqa: ANN001
        if msg.type != "error":
            return
        # Chromium logs every 4xx document as "Failed to load resource: ... status of 404 (Not Found)".
        if any(f"status of {status} " in msg.text for status in self.expected_statuses):
            return
        self.problems.append(f"console {msg.type}: {msg.text}")


@pytest.fixture
def browser_log() -> ConsoleLog:
    """The console messages of the test's page."""
    return ConsoleLog()


@pytest.fixture
def page(browser, browser_log: ConsoleLog) -> Iterator[object]:  # noqa: ANN001
    """A fresh 1366×768 page; any console error or uncaught script error fails the test."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.on("console", browser_log.on_console)
    page.on("pageerror", lambda exc: browser_log.problems.append(f"page error: {exc}"))
    yield page
    context.close()
    assert browser_log.problems == [], browser_log.problems
