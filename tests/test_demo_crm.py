"""The demo's CRM: the router delivers an approved offer to it over real HTTP, and an admin sees it."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from api import routing
from api.app import API_PREFIX, create_app
from fleet.settings import Settings
from servicecast import demo_crm
from tests.api.support import World, build_world
from tests.console.client import visible
from tests.services import free_port, wait_port


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[World, str]]:  # noqa: ANN001
    port, url = free_port(), f"sqlite:///{tmp_path / 'demo.db'}"
    settings = demo_crm.settings_with_receiver(Settings(database_url=url, api_port=port))
    assert settings.webhook_url == f"http://127.0.0.1:{port}/demo/crm"
    world = build_world(url, **_fields(settings))
    app = create_app(world.settings)
    demo_crm.install(app, world.settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_port(port, timeout=30)
        yield world, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _fields(settings) -> dict:  # noqa: ANN001
    return {
        "api_port": settings.api_port,
        "webhook_url": settings.webhook_url,
        "webhook_secret": settings.webhook_secret.get_secret_value(),
        "public_url": f"http://127.0.0.1:{settings.api_port}",
    }


def test_an_approved_offer_reaches_the_demo_crm_and_an_admin_sees_it(served) -> None:  # noqa: ANN001
    world, base = served
    offer_id = world.offers["acme"][0]
    # The test asserts no speed; the approval once took longer than httpx's default 5 s in a full CI run.
    with httpx.Client(base_url=base, timeout=60) as client:
        path = f"{API_PREFIX}/offers/{offer_id}/approve"
        approved = client.post(path, json={}, headers=world.headers("admin"))
        assert approved.status_code == 200, approved.text
        report = routing.deliver_due(engine=world.engine, settings=world.settings)
        assert (report.delivered, report.errors) == (1, [])
        forged = client.post("/demo/crm", json={"data": {"offer_id": 1}}, headers={"webhook-id": "x"})
        assert forged.status_code == 401
        client.post("/login", data={"api_key": world.tokens["tech"]})
        assert client.get("/admin/crm").status_code == 403
        client.post("/login", data={"api_key": world.tokens["admin"]})
        inbox = client.get("/admin/crm")
    assert inbox.status_code == 200
    assert f'<tr data-offer="{offer_id}">' in inbox.text
    received = re.search(r'<tr data-offer="\d+"><td>(.*?)</td>', inbox.text, re.S).group(1)
    assert visible(received).strip().startswith("Offer approved offer.approved ·")  # words, then the type
    assert '<code class="small">offer.approved</code>' in received  # the type for an integrator, small
    assert inbox.text.count("<tr data-offer=") == 1
