"""The alert list that the database writes as JSON equals, field by field, what AlertOut gives."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from api import alerts, schemas
from fleet.db import session
from fleet.tables import Alert
from tests.api.support import NOW, World, build_world

QUEUE = (Alert.queue_rank, Alert.lead_rank, Alert.id)


def _add_alerts(world: World) -> None:
    """Alerts that exercise every field: nulls, microseconds, nested evidence, findings, odd floats."""
    tech = world.users["tech"]
    with session(world.engine) as sess:
        for tenant, machines in world.machines.items():
            customer = world.customers[tenant]

            def alert(machine: int, severity: str, status: str, customer=customer, **fields) -> Alert:
                rank = {"critical": 1, "high": 2, "medium": 3}[severity]
                lead = fields.get("lead_time_hours")
                return Alert(
                    customer_id=customer,
                    machine_id=machine,
                    severity=severity,
                    queue_rank=rank,
                    status=status,
                    lead_rank=1e9 if lead is None else lead,
                    **fields,
                )

            sess.add_all(
                [
                    alert(
                        machines[0],
                        "critical",
                        "assigned",
                        failure_mode="bearing_wear",
                        risk=0.1 + 0.2,  # 0.30000000000000004: needs 17 digits to read back
                        lead_time_hours=23.456789012345678,
                        eta=NOW + timedelta(hours=23, microseconds=120_000),
                        evidence={
                            "prediction_id": 7,
                            "contributions": [{"sensor": "vibration_rms_mm_s", "delta": 1 / 3}],
                            "explanation": 'vibration "rose" 40 % — Lager\nläuft heiß',
                            "rul_hours": None,
                            "rul_interval": [None, 12.5],
                            "eta": None,
                            "anomaly_score": 1e-7,
                            "big": 12345678901234567,
                        },
                        count=4,
                        model_version="fleet-2026.11",
                        first_seen=NOW - timedelta(days=2, microseconds=1),
                        last_seen=NOW,
                        assignee_id=tech,
                        acknowledged_at=NOW - timedelta(hours=1),
                        escalated_at=NOW - timedelta(minutes=30, microseconds=999_999),
                    ),
                    alert(
                        machines[1],
                        "high",
                        "resolved",
                        failure_mode="seal_leak",
                        risk=1.0,
                        lead_time_hours=0.0,
                        evidence={},
                        first_seen=NOW - timedelta(days=9),
                        last_seen=NOW - timedelta(days=8),
                        acknowledged_at=NOW - timedelta(days=8),
                        resolved_at=NOW - timedelta(days=7),
                        finding="other",
                        finding_text="impeller cracked, 'not' the seal",
                        parts_used=["impeller 160 mm", "seal kit"],
                    ),
                    alert(
                        machines[2],
                        "medium",
                        "open",
                        failure_mode="cavitation",
                        risk=2 / 3,
                        lead_time_hours=None,
                        evidence={"contributions": [], "eta": None},
                        first_seen=NOW - timedelta(hours=5),
                        last_seen=NOW - timedelta(hours=5),
                        parts_used=[],
                    ),
                    alert(
                        machines[2],
                        "high",
                        "acknowledged",
                        failure_mode="motor_overheat",
                        risk=0.7,
                        lead_time_hours=1e-3,
                        evidence={"nested": {"deep": [1, 2.5, None, True, False, "x"]}},
                        first_seen=NOW,
                        last_seen=NOW,
                        acknowledged_at=NOW,
                    ),
                ]
            )


def _expected(world: World, statuses, customers=None, **filters) -> list[dict]:
    """The list as the schema-validated ORM path gives it."""
    with session(world.engine) as sess:
        query = select(Alert).where(Alert.status.in_(statuses))
        if customers is not None:
            query = query.where(Alert.customer_id.in_(customers))
        for name, value in filters.items():
            query = query.where(getattr(Alert, name) == value)
        rows = sess.scalars(query.order_by(*QUEUE)).all()
        return [schemas.AlertOut.model_validate(row).model_dump(mode="json") for row in rows]


def _assert_same(got: list[dict], expected: list[dict]) -> None:
    assert [a["id"] for a in got] == [a["id"] for a in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert list(mine) == list(theirs), "field order"
        for field in theirs:
            assert mine[field] == theirs[field], (theirs["id"], field)
            assert type(mine[field]) is type(theirs[field]) or {type(mine[field]), type(theirs[field])} == {
                int,
                float,
            }, (theirs["id"], field)


@pytest.fixture
def world(database_url: str) -> World:
    world = build_world(database_url)
    _add_alerts(world)
    return world


@pytest.fixture
def sqlite_world(tmp_path) -> World:  # noqa: ANN001
    """The same world on SQLite only: its JSON text can hold a NaN that PostgreSQL's jsonb refuses."""
    world = build_world(f"sqlite:///{tmp_path / 'nan.db'}")
    _add_alerts(world)
    return world


def test_alert_list_equals_the_schema_path(world: World) -> None:
    with world.client() as client:
        for status, states in {
            "active": alerts.OPEN_STATES,
            "resolved": ("resolved",),
            "open": ("open",),
            "assigned": ("assigned",),
            "acknowledged": ("acknowledged",),
        }.items():
            response = client.get(f"/api/v1/alerts?status={status}", headers=world.headers("admin"))
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            _assert_same(response.json(), _expected(world, states))
        assert len(_expected(world, alerts.OPEN_STATES)) >= 8  # both tenants, every severity


def test_another_tenant_is_filtered_out(world: World) -> None:
    acme, globex = world.customers["acme"], world.customers["globex"]
    with world.client() as client:
        for who, tenant in (("cust-acme", acme), ("am-globex", globex)):
            got = client.get("/api/v1/alerts?status=active", headers=world.headers(who)).json()
            _assert_same(got, _expected(world, alerts.OPEN_STATES, customers=[tenant]))
            assert {a["customer_id"] for a in got} == {tenant}
        # A customer asking for another tenant's alerts gets none rather than an error.
        got = client.get(f"/api/v1/alerts?customer_id={globex}", headers=world.headers("cust-acme")).json()
        assert got == []


def test_filters_limit_and_offset(world: World) -> None:
    machine = world.machines["acme"][2]
    customer = world.customers["globex"]
    states = alerts.OPEN_STATES
    with world.client() as client:

        def get(query: str) -> list[dict]:
            response = client.get(f"/api/v1/alerts?{query}", headers=world.headers("tech"))
            assert response.status_code == 200
            return response.json()

        _assert_same(get("severity=high"), _expected(world, states, severity="high"))
        _assert_same(get(f"machine_id={machine}"), _expected(world, states, machine_id=machine))
        _assert_same(get(f"customer_id={customer}"), _expected(world, states, customer_id=customer))
        _assert_same(
            get(f"customer_id={customer}&severity=critical&status=assigned"),
            _expected(world, ("assigned",), customer_id=customer, severity="critical"),
        )
        everything = _expected(world, states)
        _assert_same(get("limit=3&offset=2"), everything[2:5])
        _assert_same(get("limit=1000&offset=1"), everything[1:])
        assert get("offset=1000") == []


def test_evidence_python_wrote_with_nan_is_answered_through_the_schema(sqlite_world: World) -> None:
    world = sqlite_world
    with session(world.engine) as sess:
        first = sess.scalars(select(Alert).order_by(*QUEUE)).first()
        first.evidence = {"anomaly_score": float("nan"), "rul_hours": 10.0}
    with world.client() as client:
        got = client.get("/api/v1/alerts", headers=world.headers("admin")).json()
    _assert_same(got, _expected(world, alerts.OPEN_STATES))
    assert got[0]["evidence"] == {"anomaly_score": None, "rul_hours": 10.0}


def test_openapi_still_documents_alert_out(world: World) -> None:
    with world.client() as client:
        spec = client.get("/openapi.json").json()
    ok = spec["paths"]["/api/v1/alerts"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["items"]["$ref"] == "#/components/schemas/AlertOut"
