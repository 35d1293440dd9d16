"""Erasure and the customer's Sparkplug edge nodes: their broker identities go with the customer."""

from __future__ import annotations

from sqlalchemy import select

from fleet import credentials, erasure
from fleet.tables import SparkplugCredential
from tests.lifecycle import support


def test_erasure_deletes_the_tenants_edge_node_credentials_and_only_those(sqlite_engine, tmp_path):
    for tenant in ("zeta_erase", "zetaXerase"):  # '_' is a LIKE wildcard: the other must stay
        support.register(sqlite_engine, tenant, ["m1"])
        credentials.issue_sparkplug(
            engine=sqlite_engine, username=credentials.edge_node_username(tenant, "edge-1")
        )
    credentials.issue_sparkplug(engine=sqlite_engine, username=credentials.host_username("scada"))
    receipt = erasure.erase(
        sqlite_engine,
        tenant="zeta_erase",
        confirm="zeta_erase",
        by="cli:test",
        archive_url=str(tmp_path / "archive"),
        now=support.START,
    )
    with sqlite_engine.connect() as conn:
        left = sorted(conn.scalars(select(SparkplugCredential.username)))
    assert left == ["spBv1.0/STATE/scada", "spBv1.0/zetaXerase/edge-1"]
    assert receipt["counts"]["sparkplug_credentials"] == 1


def test_erasing_a_tenant_called_state_keeps_the_hosts_credentials(sqlite_engine, tmp_path):
    support.register(sqlite_engine, "STATE", ["m1"])
    credentials.issue_sparkplug(engine=sqlite_engine, username=credentials.host_username("scada"))
    erasure.erase(
        sqlite_engine,
        tenant="STATE",
        confirm="STATE",
        by="cli:test",
        archive_url=str(tmp_path),
        now=support.START,
    )
    with sqlite_engine.connect() as conn:
        assert list(conn.scalars(select(SparkplugCredential.username))) == ["spBv1.0/STATE/scada"]
