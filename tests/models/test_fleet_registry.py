"""Model registry: versioned artifacts, one active version per machine type, promote and rollback."""

from __future__ import annotations

import pytest

from models import versions


def test_register_promote_rollback(sqlite_engine) -> None:
    first = versions.register(sqlite_engine, model={"w": 1}, machine_type="pump", metrics={"threshold": 0.6})
    second = versions.register(
        sqlite_engine, model={"w": 2}, machine_type="pump", params={"horizon_hours": 168}
    )
    other = versions.register(sqlite_engine, model={"w": 3}, machine_type="cnc")
    assert versions.active_versions(sqlite_engine) == {"pump": second, "cnc": other}
    assert versions.load_active(sqlite_engine)["pump"] == (second, {"w": 2})
    assert versions.rollback(sqlite_engine, "pump").version == first
    assert versions.active_versions(sqlite_engine)["pump"] == first
    assert versions.promote(sqlite_engine, second).active
    listed = versions.list_versions(sqlite_engine, "pump")
    assert [v.version for v in listed] == [second, first]
    assert listed[1].metrics == {"threshold": 0.6}
    with pytest.raises(versions.ModelNotFound):
        versions.promote(sqlite_engine, "nope")
    with pytest.raises(versions.ModelNotFound):
        versions.rollback(sqlite_engine, "cnc")


def test_register_without_activation(sqlite_engine) -> None:
    version = versions.register(sqlite_engine, model=[1], machine_type="pump", activate=False)
    assert versions.active_versions(sqlite_engine) == {}
    assert versions.load(sqlite_engine, version) == [1]
