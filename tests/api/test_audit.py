"""The audit trail: actor, time, before and after of every sensitive action; append-only in the database."""

from __future__ import annotations

import getpass
from datetime import timedelta

import pytest
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from api import auth
from api.app import API_PREFIX
from fleet import audit
from fleet.db import session
from fleet.tables import Offer, WorkflowEvent, utcnow
from models import versions as model_versions
from servicecast.cli import app
from tests.api.support import build_world

runner = CliRunner()
CLI_ACTOR = f"cli:{getpass.getuser()}"


def trail(engine: Engine, subject: str, action: str | None = None) -> list[WorkflowEvent]:
    """Audit rows about one kind of subject (and action), oldest first."""
    query = select(WorkflowEvent).where(WorkflowEvent.subject == subject).order_by(WorkflowEvent.id)
    if action:
        query = query.where(WorkflowEvent.action == action)
    with session(engine) as sess:
        return list(sess.scalars(query))


def cli(*args: str):  # noqa: ANN201
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def world(database_url):
    return build_world(database_url)


def test_audit_rows_can_be_neither_changed_nor_deleted(engine) -> None:
    with session(engine) as sess:
        audit.record(
            sess, "customer", 1, "consent_granted", audit.Operator("cli:test"), {"purpose": "offers"}
        )
    for statement in (
        update(WorkflowEvent).values(action="nothing"),
        delete(WorkflowEvent),
        *([text("TRUNCATE workflow_events")] if engine.dialect.name == "postgresql" else []),
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    (row,) = trail(engine, "customer")
    assert (row.action, row.actor, row.actor_id, row.data) == (
        "consent_granted",
        "cli:test",
        None,
        {"purpose": "offers"},
    )


def test_consent_grant_and_revoke_in_the_api_record_the_admin_and_the_declaration(world) -> None:
    acme = world.customers["acme"]
    url = f"{API_PREFIX}/customers/{acme}/grants/product_improvement"
    with world.client() as client:
        started = utcnow()
        granted = client.put(url, params={"reference": "DPA-2026-017 §4"}, headers=world.headers("admin"))
        assert granted.status_code == 200 and "product_improvement" in granted.json()["purposes"]
        revoked = client.delete(
            url, params={"reference": "letter 2026-12-01"}, headers=world.headers("admin")
        )
        assert revoked.status_code == 200 and "product_improvement" not in revoked.json()["purposes"]
    grant, revoke = trail(world.engine, "customer")[-2:]
    for row in (grant, revoke):
        assert (row.subject_id, row.actor, row.actor_id) == (acme, "admin", world.users["admin"])
        assert started <= row.at <= utcnow()
    assert grant.action == "consent_granted"
    assert grant.data == {"purpose": "product_improvement", "reference": "DPA-2026-017 §4"}
    assert grant.before == {"purposes": ["offers", "service"]}
    assert grant.after == {"purposes": ["offers", "product_improvement", "service"]}
    assert revoke.action == "consent_revoked"
    assert revoke.data == {"purpose": "product_improvement", "reference": "letter 2026-12-01"}
    assert (revoke.before, revoke.after) == (grant.after, grant.before)


def test_consent_from_the_command_line_names_the_operator(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    added = cli("customers", "add", "acme", "--product-improvement", "--reference", "contract 77")
    assert "data use: service, product_improvement" in added.output
    cli("customers", "grant", "acme", "offers", "--reference", "mail of 1 Dec")
    cli("customers", "revoke", "acme", "product_improvement")
    wrong = runner.invoke(app, ["customers", "revoke", "acme", "marketing"])
    assert wrong.exit_code == 1 and "purpose must be one of" in wrong.output
    assert "acme\tacme\tservice, offers" in cli("customers", "list").output
    from fleet.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    added_row, grant, revoke = trail(engine, "customer")
    assert {r.actor for r in (added_row, grant, revoke)} == {CLI_ACTOR}
    assert added_row.action == "customer_added" and added_row.data == {"reference": "contract 77"}
    assert (added_row.before, added_row.after) == (None, {"purposes": ["product_improvement", "service"]})
    assert grant.data == {"purpose": "offers", "reference": "mail of 1 Dec"}
    assert grant.after == {"purposes": ["offers", "product_improvement", "service"]}
    assert revoke.data == {"purpose": "product_improvement", "reference": None}
    assert revoke.after == {"purposes": ["offers", "service"]}
    engine.dispose()


def test_users_and_keys_created_and_revoked_on_the_command_line(monkeypatch, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", url)
    cli("customers", "add", "acme")
    cli("users", "add", "dana", "--role", "account_manager", "--account", "acme", "--expires-days", "30")
    cli("users", "key", "dana")
    assert "revoked 2 key(s) of dana" in cli("users", "revoke", "dana").output
    from fleet.db import make_engine

    engine = make_engine(url)
    (created,) = trail(engine, "user")
    keys = trail(engine, "api_key")
    assert created.action == "user_created" and created.actor == CLI_ACTOR and created.before is None
    assert created.after == {
        "name": "dana",
        "role": "account_manager",
        "customer": None,
        "accounts": ["acme"],
    }
    assert [k.action for k in keys] == ["key_created", "key_created", "key_revoked", "key_revoked"]
    assert {k.actor for k in keys} == {CLI_ACTOR}
    first = keys[0]
    assert first.after["user"] == "dana" and first.after["expires_at"] is not None
    assert keys[2].before == {"revoked_at": None} and keys[2].after["revoked_at"] is not None
    assert {k.subject_id for k in keys[2:]} == {k.subject_id for k in keys[:2]}
    # The secret never reaches the trail: only the key's public prefix.
    assert all(set(k.after) <= {"user", "prefix", "expires_at", "revoked_at"} for k in keys)
    engine.dispose()


def test_console_and_api_callers_are_named_in_user_and_key_rows(world) -> None:
    with session(world.engine) as sess:
        admin = auth.authenticate(sess, world.tokens["admin"])
    user, _ = auth.create_user(engine=world.engine, name="eve", role="field_service", by=admin)
    assert auth.revoke_keys(engine=world.engine, name="eve", by=admin) == 1
    created = trail(world.engine, "user", "user_created")[-1]
    revoked = trail(world.engine, "api_key", "key_revoked")[-1]
    assert (created.subject_id, created.actor, created.actor_id) == (user.id, "admin", admin.user_id)
    assert (revoked.actor, revoked.actor_id) == ("admin", admin.user_id)


def test_model_promotion_and_rollback_record_the_versions_before_and_after(monkeypatch, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", url)
    cli("db", "upgrade")
    from fleet.db import make_engine

    engine = make_engine(url)
    first = model_versions.register(engine, model={"w": 1}, machine_type="pump")
    second = model_versions.register(engine, model={"w": 2}, machine_type="pump", activate=False)
    cli("models", "promote", second)
    cli("models", "rollback", "pump")
    trained, promoted, rolled_back = trail(engine, "model_version")
    assert (trained.action, trained.actor, trained.before, trained.after) == (
        "promoted",
        "system",
        {"active": None},
        {"active": first},
    )
    assert (promoted.action, promoted.actor) == ("promoted", CLI_ACTOR)
    assert (promoted.before, promoted.after) == ({"active": first}, {"active": second})
    assert (rolled_back.action, rolled_back.actor) == ("rolled_back", CLI_ACTOR)
    assert (rolled_back.before, rolled_back.after) == ({"active": second}, {"active": first})
    assert rolled_back.data == {"machine_type": "pump"}
    engine.dispose()


def test_an_edited_approval_records_the_old_and_new_price_and_text(world) -> None:
    offer_id = world.offers["acme"][0]
    with session(world.engine) as sess:
        offer = sess.get(Offer, offer_id)
        old = {"price": offer.price, "title": offer.title, "reason": offer.reason}
    with world.client() as client:
        answer = client.post(
            f"{API_PREFIX}/offers/{offer_id}/approve",
            json={"price": 1999.0, "reason": "Bearing kit, fitted on the next visit."},
            headers=world.headers("am-acme"),
        )
        assert answer.status_code == 200, answer.text
    (row,) = trail(world.engine, "offer", "approved")
    assert (row.subject_id, row.actor, row.actor_id) == (offer_id, "am-acme", world.users["am-acme"])
    assert row.before == old
    assert row.after == {
        "price": 1999.0,
        "title": old["title"],
        "reason": "Bearing kit, fitted on the next visit.",
    }
    assert row.data == {"edited": ["price", "reason"]}
    assert utcnow() - row.at < timedelta(minutes=1)


def test_admins_read_the_trail_newest_first_and_nobody_else_does(world) -> None:
    acme = world.customers["acme"]
    with world.client() as client:
        client.put(
            f"{API_PREFIX}/customers/{acme}/grants/product_improvement",
            params={"reference": "DPA 1"},
            headers=world.headers("admin"),
        )
        answer = client.get(
            f"{API_PREFIX}/audit",
            params={"subject": "customer", "subject_id": acme},
            headers=world.headers("admin"),
        )
        assert answer.status_code == 200
        newest = answer.json()[0]
        assert newest["action"] == "consent_granted" and newest["actor"] == "admin"
        assert newest["data"]["reference"] == "DPA 1" and "product_improvement" in newest["after"]["purposes"]
        assert {row["subject_id"] for row in answer.json()} == {acme}
        everything = client.get(
            f"{API_PREFIX}/audit", params={"limit": 500}, headers=world.headers("admin")
        ).json()
        assert [row["id"] for row in everything] == sorted((row["id"] for row in everything), reverse=True)
        assert {"user_created", "key_created", "opened", "proposed"} <= {row["action"] for row in everything}
        for who in ("tech", "am-acme", "cust-acme"):
            assert client.get(f"{API_PREFIX}/audit", headers=world.headers(who)).status_code == 403


def test_bulk_registration_records_the_consent_it_grants(engine) -> None:
    from fleet import registration, registry

    registration.register_machines(
        engine=engine,
        machines=[{"tenant": "acme", "machine": "m1"}, {"tenant": "globex", "machine": "m1"}],
        purposes={"acme": ("product_improvement",)},
        granted_by="history-import",
    )
    registry.auto_register(engine, [("newco", "m9")])
    registration.register_machines(engine=engine, machines=[{"tenant": "acme", "machine": "m2"}])
    rows = [(r.actor, r.action, r.before, r.after, r.data) for r in trail(engine, "customer")]
    assert rows == [
        ("history-import", "customer_added", None, {"purposes": ["product_improvement", "service"]}, {}),
        ("history-import", "customer_added", None, {"purposes": ["service"]}, {}),
        ("auto-register", "customer_added", None, {"purposes": ["service"]}, {"assumed": True}),
    ]
