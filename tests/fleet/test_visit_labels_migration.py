"""Migration 0032: alerts resolved "other" before the visit rule get the `visit` label it makes now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command

from fleet import labels, migrate
from fleet.db import make_engine, session
from fleet.tables import Alert, Customer, Machine

T0 = datetime(2026, 10, 1, 9, 30, tzinfo=UTC)


def _alert(machine: Machine, mode: str, finding: str | None, hours: float) -> Alert:
    resolved = None if finding is None else T0 + timedelta(hours=hours)
    return Alert(
        customer_id=machine.customer_id,
        machine_id=machine.id,
        failure_mode=mode,
        severity="high",
        risk=0.9,
        status="open" if finding is None else "resolved",
        finding=finding,
        finding_text=None if finding is None else "looked at it",
        resolved_at=resolved,
    )


def _stamp(engine, revision: str) -> None:
    cfg = migrate.alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.stamp(cfg, revision)


def _stored(engine) -> list[dict]:
    with engine.connect() as conn:
        frame = labels.read(conn)
    keys = ["machine_id", "ts", "kind", "component", "mode", "source", "ref"]
    return frame[keys].astype(object).where(frame[keys].notna(), None).to_dict("records")


def test_migration_0032_adds_the_missing_visit_labels_once_and_its_downgrade_only_those(database_url):
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine, "0031")
        with session(engine) as sess:
            customer = Customer(tenant="acme", name="Acme")
            sess.add(customer)
            sess.flush()
            pump = Machine(customer_id=customer.id, code="pump-1", machine_type="centrifugal_pump")
            sess.add(pump)
            sess.flush()
            before_rule = _alert(pump, "seal_leak", "other", 1)
            unnamed = _alert(pump, "unknown", "other", 2)
            labelled = _alert(pump, "bearing_wear", "other", 3)  # resolved after the rule: has its label
            silent = _alert(pump, "no_data", "other", 4)  # about the machine's messages: never a label
            no_fault = _alert(pump, "impeller_wear", "no_fault_found", 5)
            still_open = _alert(pump, "seal_leak", None, 6)
            sess.add_all([before_rule, unnamed, labelled, silent, no_fault, still_open])
            sess.flush()
            own = {"customer_id": customer.id, "machine_id": pump.id, "component": "", "source": "finding"}
            labels.write(
                sess.connection(),
                [
                    own | {"ts": labelled.resolved_at, "kind": "visit", "ref": f"alert:{labelled.id}"},
                    own | {"ts": no_fault.resolved_at, "kind": "no_fault", "ref": f"alert:{no_fault.id}"},
                ],
            )
        old = _stored(engine)
        assert len(old) == 2

        migrate.upgrade(engine, "0032")

        added = [row for row in _stored(engine) if row not in old]
        pumps = {"machine_id": pump.id, "kind": "visit", "component": "", "source": "migration"}
        assert added == [
            pumps | {"ts": before_rule.resolved_at, "mode": "seal_leak", "ref": f"alert:{before_rule.id}"},
            pumps | {"ts": unnamed.resolved_at, "mode": None, "ref": f"alert:{unnamed.id}"},
        ]
        assert len(_stored(engine)) == len(old) + 2
        _stamp(engine, "0031")  # as if the version were lost: a second run adds nothing
        migrate.upgrade(engine, "0032")
        assert len(_stored(engine)) == len(old) + 2

        migrate.downgrade(engine, "0031")
        assert _stored(engine) == old
    finally:
        engine.dispose()
