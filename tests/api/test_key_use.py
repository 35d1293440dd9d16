"""Keys record their last use at most once a minute; a disabled user is refused until enabled again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from api import auth
from api.app import API_PREFIX
from fleet.tables import ApiKey, User, WorkflowEvent, utcnow
from servicecast.cli import app
from tests.api.support import build_world


@pytest.fixture
def world(database_url):
    return build_world(database_url)


def last_used(world, who: str):
    """The stored last use of the user's key."""
    with world.engine.connect() as conn:
        query = select(ApiKey.last_used_at).join(User, ApiKey.user_id == User.id).where(User.name == who)
        return conn.scalar(query)


def set_last_used(world, who: str, at) -> None:
    with world.engine.begin() as conn:
        user_id = conn.scalar(select(User.id).where(User.name == who))
        conn.execute(update(ApiKey).where(ApiKey.user_id == user_id).values(last_used_at=at))


def test_a_keys_use_is_recorded_at_most_once_a_minute(world):
    assert last_used(world, "tech") is None
    with world.client() as client:
        before = utcnow()
        assert client.get(f"{API_PREFIX}/alerts", headers=world.headers("tech")).status_code == 200
        first = last_used(world, "tech")
        assert first is not None and first >= before - timedelta(seconds=1)
        # Within the minute a lookup (the key cache forgotten) does not write again ...
        recent = utcnow() - timedelta(seconds=30)
        set_last_used(world, "tech", recent)
        auth.principals.clear()
        assert client.get(f"{API_PREFIX}/alerts", headers=world.headers("tech")).status_code == 200
        assert last_used(world, "tech") == recent
        # ... after it, the next lookup does.
        set_last_used(world, "tech", utcnow() - timedelta(minutes=2))
        auth.principals.clear()
        assert client.get(f"{API_PREFIX}/alerts", headers=world.headers("tech")).status_code == 200
        assert last_used(world, "tech") >= before
    assert last_used(world, "admin") is None, "a key nobody used stays unused"


def test_a_disabled_user_is_refused_until_enabled_again(world, monkeypatch):
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", world.settings.database_url)
    runner = CliRunner()
    with world.client() as client:
        assert client.get(f"{API_PREFIX}/alerts", headers=world.headers("tech")).status_code == 200
        result = runner.invoke(app, ["users", "disable", "tech"])
        assert result.exit_code == 0 and "tech disabled" in result.output
        # Refused at once in this process: the cached principal is forgotten with the change.
        assert client.get(f"{API_PREFIX}/alerts", headers=world.headers("tech")).status_code == 401
        assert "already" in runner.invoke(app, ["users", "disable", "tech"]).output
        assert runner.invoke(app, ["users", "enable", "tech"]).exit_code == 0
        auth.principals.clear()  # another process's cache: the CLI cannot reach it
        assert client.get(f"{API_PREFIX}/alerts", headers=world.headers("tech")).status_code == 200
    assert runner.invoke(app, ["users", "disable", "nobody"]).exit_code != 0
    with world.engine.connect() as conn:
        trail = conn.execute(
            select(WorkflowEvent.action, WorkflowEvent.actor, WorkflowEvent.before, WorkflowEvent.after)
            .where(WorkflowEvent.action.in_(("user_disabled", "user_enabled")))
            .order_by(WorkflowEvent.id)
        ).all()
    assert [row.action for row in trail] == ["user_disabled", "user_enabled"]
    assert trail[0].actor.startswith("cli:") and trail[0].before == {"disabled_at": None}
    assert trail[1].after == {"disabled_at": None} and trail[1].before == trail[0].after
