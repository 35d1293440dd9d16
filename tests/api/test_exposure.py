"""What the API tells strangers: readiness without exception text; docs and metrics as the settings allow."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from api.app import create_app
from tests.api.support import build_world

DOCS = ("/docs", "/redoc", "/openapi.json")


@pytest.fixture
def world(tmp_path):
    return build_world(f"sqlite:///{tmp_path / 'exposure.db'}")


def test_readyz_answers_503_without_the_exception_text(world, caplog) -> None:
    with world.client() as client:
        assert client.get("/readyz").json()["status"] == "ready"
        # A database that refuses connections; its URL carries a password the error text would show.
        client.app.state.engine = create_engine("postgresql+psycopg://scott:tiger-s3cret@127.0.0.1:1/nowhere")
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json() == {"error": "not_ready", "detail": "database unavailable"}
    assert "127.0.0.1" in caplog.text  # the cause goes to the log, for the operator


def test_health_and_readiness_answer_head_as_get(world) -> None:
    """Uptime monitors and load balancers often ask with HEAD: a 405 read as the service being down."""
    with world.client() as client:
        for path in ("/healthz", "/readyz"):
            got, head = client.get(path), client.head(path)
            assert (head.status_code, head.content) == (200, b""), path
            assert head.headers["content-length"] == got.headers["content-length"], path
        client.app.state.engine = create_engine("postgresql+psycopg://scott:tiger-s3cret@127.0.0.1:1/nowhere")
        assert client.head("/readyz").status_code == 503


@pytest.mark.parametrize(
    ("docs", "metrics"),
    [("public", "public"), ("admin", "admin"), ("off", "off")],
    ids=["public", "admin", "off"],
)
def test_docs_and_metrics_are_public_admin_only_or_off_as_set(tmp_path, docs, metrics) -> None:
    world = build_world(f"sqlite:///{tmp_path / 'exposure.db'}", api_docs=docs, api_metrics=metrics)
    with world.client() as client:
        for path, mode in [*((p, docs) for p in DOCS), ("/metrics", metrics)]:
            anyone = client.get(path)
            tech = client.get(path, headers=world.headers("tech"))
            admin = client.get(path, headers=world.headers("admin"))
            if mode == "public":
                assert anyone.status_code == 200, path
            elif mode == "admin":
                assert (anyone.status_code, tech.status_code, admin.status_code) == (401, 403, 200), path
            else:
                assert (anyone.status_code, admin.status_code) == (404, 404), path
            if admin.status_code == 200 and path == "/metrics":
                assert "# TYPE" in admin.text
            if admin.status_code == 200 and path == "/openapi.json":
                assert "/api/v1/alerts" in admin.json()["paths"]


def test_admin_only_docs_open_in_the_browser_of_a_signed_in_admin(tmp_path) -> None:
    from tests.console.client import ConsoleClient, sign_in

    world = build_world(f"sqlite:///{tmp_path / 'exposure.db'}", api_docs="admin", api_metrics="admin")
    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "tech")
        assert client.get("/docs").status_code == 403
        assert 'href="/docs"' not in client.get("/alerts").text  # the console links only what opens
        sign_in(client, world, "admin")
        assert client.get("/docs").status_code == 200 and client.get("/metrics").status_code == 200
        assert 'href="/docs"' in client.get("/admin").text
        client.post("/logout")
        assert client.get("/openapi.json").status_code == 401
