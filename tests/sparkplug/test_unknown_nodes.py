"""Edge nodes and devices the map does not name: quarantined, with no node state kept for them."""

from __future__ import annotations

import pysparkplug as spb
from sqlalchemy import func, select

from fleet import sparkplug_state
from fleet.tables import SparkplugNode
from tests.ingest.support import quarantine_reasons, register_fleet
from tests.sparkplug.support import DEVICE, GROUP, NODE, T0, RecordingEdgeNode, sparkplug_pipeline
from tests.sparkplug.test_hostile_nodes import readings

BD_SEQ = (spb.Metric(T0, "bdSeq", spb.DataType.INT64, value=0),)


def node_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(SparkplugNode))


def test_births_and_data_under_made_up_node_ids_keep_no_state_and_ask_no_rebirth(engine):
    """Each made-up node (an attacker, a misconfigured edge) got a sparkplug_nodes row: the table grew with
    every id ever sent, and the host asked each of them for a rebirth."""
    register_fleet(engine, "acme", ["m-000"])
    pipeline, rebirths = sparkplug_pipeline(engine)
    edge = RecordingEdgeNode()
    edge.birth(T0)
    birth = spb.NBirth(timestamp=T0, seq=0, metrics=BD_SEQ).encode()
    data = spb.NData(timestamp=T0 + 1, seq=5, metrics=BD_SEQ).encode()
    for i in range(50):
        edge._send(f"spBv1.0/{GROUP}/NBIRTH/made-up-{i}", birth)
        edge._send(f"spBv1.0/made-up-group-{i}/NDATA/{NODE}", data)
        edge._send(f"spBv1.0/{GROUP}/DDATA/made-up-{i}/{DEVICE}", data)
    edge.data(T0 + 10, 61.0)
    pipeline.store(edge.take())
    assert node_rows(engine) == 1
    assert rebirths == []
    assert quarantine_reasons(engine) == ["sparkplug_unknown_node"] * 150
    assert [r["temperature_c"] for r in readings(engine)] == [60.0, 61.0]


def test_births_of_devices_the_map_does_not_name_leave_the_nodes_state_as_it_was(engine):
    """A mapped node's births of made-up devices were kept in its state (each device's aliases), which grew
    with every id ever sent and was written whole with each batch; their data asked for rebirths."""
    register_fleet(engine, "acme", ["m-000"])
    pipeline, rebirths = sparkplug_pipeline(engine)
    edge = RecordingEdgeNode()
    edge.birth(T0)
    pipeline.store(edge.take())
    for i in range(50):
        metric = spb.Metric(T0 + i, "Spindle/Temperature", spb.DataType.DOUBLE, value=1.0, alias=10)
        birth = spb.DBirth(timestamp=T0 + i, seq=edge._next(), metrics=(metric,))
        edge._send(f"spBv1.0/{GROUP}/DBIRTH/{NODE}/made-up-{i}", birth.encode())
        data = spb.DData(timestamp=T0 + i, seq=edge._next(), metrics=(metric,))
        edge._send(f"spBv1.0/{GROUP}/DDATA/{NODE}/never-born-{i}", data.encode())
    edge.data(T0 + 100, 61.0)  # in the node's seq, after them: no gap
    pipeline.store(edge.take())
    with engine.connect() as conn:
        state = sparkplug_state.load(conn, "scada", [(GROUP, NODE)])[(GROUP, NODE)]
    assert state["devices"] == {DEVICE: True}
    assert list(state["device_metrics"]) == [DEVICE]
    assert rebirths == []
    assert quarantine_reasons(engine) == ["sparkplug_unmapped"] * 100
    assert [r["temperature_c"] for r in readings(engine)] == [60.0, 61.0]
