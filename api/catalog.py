"""The service catalog and the downtime economics that price an offer's value to the customer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """Something the OEM sells: when it fits, what it costs, how to say it."""

    key: str
    title: str
    price: float
    min_risk: float
    modes: frozenset[str] | None = None
    tiers: frozenset[str] | None = None
    min_lead_hours: float = 0.0
    pitch: str = ""


@dataclass(frozen=True, slots=True)
class Downtime:
    """What an unplanned failure of a machine type costs its owner."""

    hours: float
    cost_per_hour: float


# Checked in order: the first item that fits a prediction is offered.
DEFAULT_CATALOG = (
    CatalogItem(
        "contract_upgrade",
        "Upgrade to the Premium service contract",
        3600.0,
        0.8,
        tiers=frozenset({"basic"}),
        min_lead_hours=72,
        pitch="priority visits and parts on site, so predicted faults are fixed before they stop production",
    ),
    CatalogItem(
        "wear_part_replacement",
        "Planned replacement of the worn part",
        2400.0,
        0.7,
        modes=frozenset({"bearing_wear", "seal_leak", "valve_leak", "impeller_fouling", "clogged_filter"}),
        pitch="replace the worn part at a planned stop instead of after a breakdown",
    ),
    CatalogItem(
        "spare_parts_kit",
        "Spare-parts kit on site",
        1200.0,
        0.6,
        pitch="keep the parts for this failure mode on site so a repair takes hours, not days",
    ),
    CatalogItem(
        "inspection_visit",
        "Inspection visit by a service technician",
        450.0,
        0.5,
        pitch="a technician checks the machine and confirms the finding before anything is replaced",
    ),
)

DOWNTIME = {
    "centrifugal_pump": Downtime(16, 900.0),
    "air_compressor": Downtime(12, 1200.0),
    "cnc_spindle": Downtime(24, 2500.0),
}
DEFAULT_DOWNTIME = Downtime(16, 1000.0)


def choose(
    *,
    mode: str,
    risk: float,
    tier: str,
    lead_hours: float | None,
    catalog: tuple[CatalogItem, ...] = DEFAULT_CATALOG,
) -> CatalogItem | None:
    """The first catalog item that fits this prediction, or None."""
    for item in catalog:
        if risk < item.min_risk:
            continue
        if item.modes is not None and mode not in item.modes:
            continue
        if item.tiers is not None and tier not in item.tiers:
            continue
        if lead_hours is not None and lead_hours < item.min_lead_hours:
            continue
        return item
    return None


def expected_value(*, risk: float, machine_type: str) -> float:
    """Avoided downtime cost: probability of the failure times what the failure would cost."""
    downtime = DOWNTIME.get(machine_type, DEFAULT_DOWNTIME)
    return round(risk * downtime.hours * downtime.cost_per_hour, 2)
