"""Configuration checks and the machine table."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from simulators.config import FleetConfig
from simulators.fleet import build_fleet
from simulators.machine_types import MACHINE_TYPES


@pytest.mark.parametrize(
    "kwargs",
    [
        {"machines": 0},
        {"step_seconds": 7},
        {"sudden_share": 1.5},
        {"bad_payload_rate": 0.6},
        {"failure_rate": -1.0},
        {"start": datetime(2026, 1, 1)},
        {"type_mix": {"toaster": 1.0}},
        {"modes": ("gremlins",)},
        {"maintenance_interval_days": 0.0},
        {"days": float("inf")},
        {"days": float("nan")},
        {"failure_rate": float("nan")},
        {"fault_rate": float("inf")},
        {"maintenance_interval_days": float("nan")},
        {"repair_hours": float("nan")},
        {"seed": 2**63},
        {"machines": 100_001},
        {"start": datetime(1600, 1, 1, tzinfo=UTC)},
        {"start": datetime(2262, 4, 1, tzinfo=UTC), "days": 30},
    ],
)
def test_config_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        FleetConfig(**kwargs)


def test_config_accepts_a_mapping_for_the_type_mix_and_stays_hashable():
    config = FleetConfig(type_mix={"cnc_spindle": 1.0})
    assert config.type_mix == (("cnc_spindle", 1.0),)
    assert hash(config) == hash(FleetConfig(type_mix={"cnc_spindle": 1.0}))


def test_fleet_has_the_configured_size_mix_tenants_and_ids():
    config = FleetConfig(machines=50, type_mix={"centrifugal_pump": 3, "air_compressor": 1, "cnc_spindle": 1})
    fleet = build_fleet(config)
    assert list(fleet.columns) == [
        "tenant", "machine", "machine_type", "serial", "installed", "contract_tier", "site",
    ]  # fmt: skip
    assert len(fleet) == 50 and fleet["machine"].is_unique and fleet["serial"].is_unique
    assert fleet["machine_type"].value_counts().to_dict() == {
        "centrifugal_pump": 30, "air_compressor": 10, "cnc_spindle": 10,
    }  # fmt: skip
    assert set(fleet["tenant"]) <= set(config.tenants) and fleet["tenant"].nunique() > 1
    for row in fleet.itertuples():
        assert re.fullmatch(rf"{MACHINE_TYPES[row.machine_type].prefix}-\d{{4}}", row.machine)
        assert row.site.startswith(f"{row.tenant}-site-")
    assert str(fleet["installed"].dt.tz) == "UTC" and (fleet["installed"] < config.start).all()
