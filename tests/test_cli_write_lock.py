"""Commands beside other writers on SQLite: another process commits between their reads and writes.

Each command reads, then writes in one transaction; without SQLite's write lock from BEGIN (`for_writing`)
its first write fails at once with "database is locked" when another connection committed meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from api import auth, catalog
from fleet import registry
from fleet.tables import ApiKey, CatalogVersion, ModelVersion, User, WorkflowEvent
from models import versions
from servicecast import catalog_cli, customers_cli
from servicecast.cli import app
from tests.lifecycle import support
from tests.write_lock import commit_elsewhere_before_first_write

Job = Callable[[], int]  # runs the command, then counts what it changed
NEXT = catalog.default().version + 1


@pytest.fixture
def engine(sqlite_engine: Engine, monkeypatch) -> Engine:
    """A database with customer acme; the commands run on this engine, so the test sees their statements."""
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", sqlite_engine.url.render_as_string())
    for module in (customers_cli, catalog_cli):
        monkeypatch.setattr(module, "ready_engine", lambda settings: sqlite_engine)
    support.register(sqlite_engine, "acme", ["p1"])
    return sqlite_engine


def _invoke(*args: str) -> None:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"{result.output} {result.exception!r}"


def _count(engine: Engine, *where) -> int:  # noqa: ANN002
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).where(*where)) or 0


def _catalog_file(tmp_path) -> str:  # noqa: ANN001
    text = catalog.DEFAULT_FILE.read_text(encoding="utf-8")
    path = tmp_path / "catalog.yaml"
    path.write_text(text.replace(f"version: {NEXT - 1}", f"version: {NEXT}", 1), encoding="utf-8")
    return str(path)


def _customers_revoke(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    registry.grant(engine=engine, tenant="acme", purpose="offers", by="cli:test")

    def run() -> int:
        _invoke("customers", "revoke", "acme", "offers")
        return len(registry.active_purposes(engine=engine, tenant="acme"))  # service only

    return run


def _catalog_add(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    path = _catalog_file(tmp_path)

    def run() -> int:
        _invoke("catalog", "add", path, "--activate")
        return _count(engine, CatalogVersion.version == NEXT, CatalogVersion.activated_at.is_not(None))

    return run


def _catalog_activate(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    _invoke("catalog", "add", _catalog_file(tmp_path))

    def run() -> int:
        _invoke("catalog", "activate", str(NEXT))
        return _count(engine, CatalogVersion.version == NEXT, CatalogVersion.activated_at.is_not(None))

    return run


def _users_add(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    def run() -> int:
        auth.create_user(engine=engine, name="ann", role="customer", customer="acme")
        return _count(engine, User.name == "ann")

    return run


def _users_key(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    auth.create_user(engine=engine, name="bob", role="field_service")

    def run() -> int:
        auth.issue_key(engine=engine, name="bob")
        return _count(engine, ApiKey.revoked_at.is_(None))

    return run


def _users_revoke(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    auth.create_user(engine=engine, name="bob", role="field_service")

    def run() -> int:
        return auth.revoke_keys(engine=engine, name="bob") - _count(engine, ApiKey.revoked_at.is_(None))

    return run


def _users_disable(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    auth.create_user(engine=engine, name="bob", role="field_service")

    def run() -> int:
        auth.set_disabled(engine=engine, name="bob", disabled=True)
        return _count(engine, User.disabled_at.is_not(None))

    return run


def _models_promote(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    version = versions.register(engine, model={"a": "model"}, machine_type="pump", activate=False)

    def run() -> int:
        versions.promote(engine, version)
        return _count(engine, ModelVersion.active)

    return run


def _models_refuse(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    version = versions.register(engine, model={"a": "model"}, machine_type="pump", activate=False)

    def run() -> int:
        versions.refuse(engine, version)
        return _count(engine, WorkflowEvent.action == "not_promoted")

    return run


COMMANDS: dict[str, tuple[Callable[[Engine, object], Job], int]] = {
    "customers revoke": (_customers_revoke, 1),
    "catalog add --activate": (_catalog_add, 1),
    "catalog activate": (_catalog_activate, 1),
    "users add (auth.create_user)": (_users_add, 1),
    "users key (auth.issue_key)": (_users_key, 2),
    "users revoke (auth.revoke_keys)": (_users_revoke, 1),
    "users disable (auth.set_disabled)": (_users_disable, 1),
    "models promote (versions.promote)": (_models_promote, 1),
    "train, candidate refused (versions.refuse)": (_models_refuse, 1),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_commit_elsewhere_between_the_commands_read_and_write_does_not_fail_it(
    command: str, engine: Engine, tmp_path
) -> None:
    prepare, expected = COMMANDS[command]
    run = prepare(engine, tmp_path)
    with commit_elsewhere_before_first_write(engine) as happened:
        changed = run()
    assert happened == ["waited"]
    assert changed == expected
