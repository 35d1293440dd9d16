"""Model registry: versioned artifacts, one active version per machine type, promote and rollback."""

from __future__ import annotations

import pytest

from models import registry


def test_register_promote_rollback(sqlite_engine) -> None:
    first = registry.register(sqlite_engine, model={"w": 1}, machine_type="pump", metrics={"threshold": 0.6})
    second = registry.register(
        sqlite_engine, model={"w": 2}, machine_type="pump", params={"horizon_hours": 168}
    )
    other = registry.register(sqlite_engine, model={"w": 3}, machine_type="cnc")
    assert registry.active_versions(sqlite_engine) == {"pump": second, "cnc": other}
    assert registry.load_active(sqlite_engine)["pump"] == (second, {"w": 2})
    assert registry.rollback(sqlite_engine, "pump").version == first
    assert registry.active_versions(sqlite_engine)["pump"] == first
    assert registry.promote(sqlite_engine, second).active
    listed = registry.list_versions(sqlite_engine, "pump")
    assert [v.version for v in listed] == [second, first]
    assert listed[1].metrics == {"threshold": 0.6}
    with pytest.raises(registry.ModelNotFound):
        registry.promote(sqlite_engine, "nope")
    with pytest.raises(registry.ModelNotFound):
        registry.rollback(sqlite_engine, "cnc")


def test_register_without_activation(sqlite_engine) -> None:
    version = registry.register(sqlite_engine, model=[1], machine_type="pump", activate=False)
    assert registry.active_versions(sqlite_engine) == {}
    assert registry.load(sqlite_engine, version) == [1]
