"""One registration path: bulk, idempotent, grants only for new customers, first sight marked as assumed."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sqlalchemy import select

from fleet import errors, machine_import, registration, registry
from fleet.csv_import import ColumnMap, ImportRefused
from fleet.tables import Customer, DataUseGrant, Machine, Site

FLEET = [
    {
        "tenant": "acme",
        "machine": "p-1",
        "machine_type": "pump",
        "site": "north",
        "installed": pd.Timestamp("2024-05-01"),
    },
    {"tenant": "acme", "machine": "p-2", "machine_type": "pump", "site": "north", "installed": pd.NaT},
    {"tenant": "globex", "machine": "c-1", "contract_tier": "gold", "serial": "SN-9"},
]


def _grants(engine) -> list[tuple[str, str, str, bool]]:
    query = (
        select(Customer.tenant, DataUseGrant.purpose, DataUseGrant.granted_by, DataUseGrant.assumed)
        .join(Customer, Customer.id == DataUseGrant.customer_id)
        .order_by(Customer.tenant, DataUseGrant.id)
    )
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def test_bulk_registration_is_idempotent_and_grants_only_new_customers(engine):
    purposes = {"acme": ("product_improvement",), "globex": ("offers",)}
    ids = registration.register_machines(engine=engine, machines=FLEET, purposes=purposes, granted_by="sim")
    again = registration.register_machines(
        engine=engine, machines=FLEET[:1], purposes={"acme": ("offers",)}, granted_by="other"
    )
    assert again == {("acme", "p-1"): ids[("acme", "p-1")]}
    assert _grants(engine) == [
        ("acme", "service", "sim", False),
        ("acme", "product_improvement", "sim", False),
        ("globex", "service", "sim", False),
        ("globex", "offers", "sim", False),
    ]
    with engine.connect() as conn:
        machines = {m.code: m for m in conn.execute(select(Machine).order_by(Machine.id)).all()}
        sites = conn.execute(select(Site.name)).scalars().all()
    assert sorted(machines) == ["c-1", "p-1", "p-2"]
    assert {ids[(t, c)][1] for t, c in ids} == {m.id for m in machines.values()}
    assert machines["p-1"].installed == date(2024, 5, 1) and machines["p-2"].installed is None
    assert machines["p-1"].site_id == machines["p-2"].site_id and sites == ["north"]
    assert (machines["c-1"].contract_tier, machines["c-1"].serial, machines["c-1"].machine_type) == (
        "gold",
        "SN-9",
        "unknown",
    )
    assert not any(m.auto_registered for m in machines.values())


def test_first_sight_assumes_service_and_marks_rows_auto_registered(engine):
    registry.add_customer(engine=engine, tenant="acme", offers=True)
    registry.auto_register(engine, [("acme", "m-1"), ("newco", "m-1"), ("newco", "m-1")])
    assert [g for g in _grants(engine) if g[0] == "newco"] == [("newco", "service", "auto-register", True)]
    assert ("acme", "offers", "system", False) in _grants(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Customer.tenant, Customer.auto_registered, Machine.auto_registered).join(
                Machine, Machine.customer_id == Customer.id
            )
        ).all()
    assert sorted(tuple(r) for r in rows) == [("acme", False, True), ("newco", True, True)]


def test_bad_ids_and_purposes_are_refused_before_anything_is_written(engine):
    with pytest.raises(errors.InvalidInput):
        registration.register_machines(engine=engine, machines=[*FLEET, {"tenant": "acme", "machine": "a/b"}])
    with pytest.raises(errors.InvalidInput):
        registration.register_machines(engine=engine, machines=FLEET, purposes={"acme": ("resale",)})
    with engine.connect() as conn:
        assert conn.scalars(select(Customer.id)).all() == []


def test_add_machine_needs_its_customer_and_refuses_a_second_registration(engine):
    with pytest.raises(errors.CustomerNotFound):
        registry.add_machine(engine=engine, tenant="acme", code="p-1")
    registry.add_customer(engine=engine, tenant="acme")
    machine = registry.add_machine(engine=engine, tenant="acme", code="p-1", site="north", serial="SN-1")
    assert (machine.code, machine.serial, machine.site_id is not None) == ("p-1", "SN-1", True)
    with pytest.raises(errors.AlreadyExists):
        registry.add_machine(engine=engine, tenant="acme", code="p-1")


@pytest.mark.parametrize(
    "key", [{"tenant": "acme\n", "machine": "p-9"}, {"tenant": "acme", "machine": "p-9\n"}]
)
def test_an_id_ending_in_a_line_break_is_refused(engine, key):
    # A regex `$` also matches before a final newline: such an id would be stored and never match a topic.
    with pytest.raises(errors.InvalidInput):
        registration.register_machines(engine=engine, machines=[key])
    with engine.connect() as conn:
        assert conn.scalars(select(Customer.id)).all() == []


def test_a_customer_id_ending_in_a_line_break_is_refused(engine):
    with pytest.raises(errors.InvalidInput):
        registry.add_customer(engine=engine, tenant="acme\n")


@pytest.mark.parametrize(("tenant", "code"), [("acme corp", "p-1"), ("acme", "p/1"), ("", "p-1")])
def test_a_bad_id_reads_the_same_in_a_machines_import_as_in_every_registration(
    sqlite_engine, tmp_path, tenant, code
):
    with pytest.raises(errors.InvalidInput) as registered:
        registration.register_machines(engine=sqlite_engine, machines=[{"tenant": tenant, "machine": code}])
    with pytest.raises(errors.InvalidInput) as added:
        registry.add_machine(engine=sqlite_engine, tenant=tenant, code=code)
    path = tmp_path / "machines.csv"
    path.write_text(f"tenant,machine\nacme,p-0\n{tenant},{code}\n")
    with pytest.raises(ImportRefused) as refused:
        machine_import.import_machines(engine=sqlite_engine, path=path, mapping=ColumnMap())
    assert str(added.value) == str(registered.value)
    assert [(r.line, r.reason) for r in refused.value.report.rejects] == [(3, str(registered.value))]
