"""What a node's births declared is written with a birth only, not with each batch of its data."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from sqlalchemy import select, text

from fleet import migrate, sparkplug_state
from fleet.db import make_engine
from fleet.tables import SparkplugBirths, SparkplugNode
from tests.ingest.support import register_fleet
from tests.sparkplug.support import DEVICE, GROUP, NODE, T0, RecordingEdgeNode, sparkplug_pipeline
from tests.sparkplug.test_hostile_nodes import readings


def stored(engine) -> tuple[dict, dict, object]:
    """The node's stored state, its births' row and when that row was written."""
    with engine.connect() as conn:
        state = conn.scalar(select(SparkplugNode.state))
        births, at = conn.execute(select(SparkplugBirths.births, SparkplugBirths.updated_at)).one()
    return state, births, at


def test_data_batches_rewrite_the_nodes_seq_not_what_its_births_declared(engine):
    """The whole state, every alias of every device, was rewritten with each batch of the node's data."""
    register_fleet(engine, "acme", ["m-000"])
    pipeline, _ = sparkplug_pipeline(engine)
    edge = RecordingEdgeNode()
    edge.birth(T0)
    pipeline.store(edge.take())
    _, births, born_at = stored(engine)
    assert set(births["device_metrics"][DEVICE]["aliases"]) == {"10", "11", "12"}
    for i in range(3):
        edge.data(T0 + 10 + i, 61.0 + i)
        pipeline.store(edge.take())
    state, after, at = stored(engine)
    assert (after, at) == (births, born_at)
    assert state["seq"] == 4 and not set(state) & set(sparkplug_state.BIRTH_KEYS)
    # A host started afresh reads both, and the data by alias still finds its names.
    fresh, _ = sparkplug_pipeline(engine)
    edge.data(T0 + 20, 70.0)
    fresh.store(edge.take())
    assert [r["temperature_c"] for r in readings(engine)] == [60.0, 61.0, 62.0, 63.0, 70.0]
    edge.birth(T0 + 30, {"Spindle/Temperature": 50.0})
    pipeline.store(edge.take())
    assert stored(engine)[2] > born_at


def test_migration_0031_moves_the_declarations_out_of_each_state_and_the_downgrade_back(database_url):
    engine = make_engine(database_url)
    device = {"aliases": {"10": "Spindle/Temperature"}, "signed": {}}
    declared = {"aliases": {"1": "bdSeq"}, "signed": {"Count": 3}, "device_metrics": {DEVICE: device}}
    whole = {"online": True, "seq": 7, "ts": T0, "bd_seq": 0, "devices": {DEVICE: True}, **declared}
    try:
        migrate.upgrade(engine, "0030")
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO sparkplug_nodes VALUES ('scada', :g, :n, :state, :at)"),
                {"g": GROUP, "n": NODE, "state": orjson.dumps(whole).decode(), "at": datetime.now(UTC)},
            )
        migrate.upgrade(engine, "head")
        state, births, _ = stored(engine)
        assert state == {k: whole[k] for k in ("online", "seq", "ts", "bd_seq", "devices")}
        assert births == declared
        with engine.connect() as conn:
            assert sparkplug_state.load(conn, "scada", [(GROUP, NODE)]) == {(GROUP, NODE): whole}
        migrate.downgrade(engine, "0030")
        with engine.connect() as conn:
            assert orjson.loads(conn.scalar(text("SELECT CAST(state AS TEXT) FROM sparkplug_nodes"))) == whole
    finally:
        engine.dispose()
