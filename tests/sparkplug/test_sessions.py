"""Sparkplug state rules through the pipeline on a real store (SQLite, PostgreSQL), no broker needed."""

from __future__ import annotations

import json
import logging

import pysparkplug as spb
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from fleet import sparkplug_state
from fleet.tables import Machine, MachineEvent, Quarantine, SparkplugNode, Telemetry
from ingest.quarantine import replay
from ingest.sparkplug import sparkplug_b_pb2 as pb
from tests.ingest.support import quarantine_reasons, register_fleet
from tests.sparkplug.support import DEVICE, GROUP, MAP, NODE, T0, RecordingEdgeNode, sparkplug_pipeline


def readings(engine) -> list[dict]:
    query = select(Telemetry.readings).join(Machine).where(Machine.code == "m-000").order_by(Telemetry.seq)
    with engine.connect() as conn:
        return list(conn.scalars(query))


def test_ddeath_marks_the_device_offline_until_its_next_dbirth(engine):
    register_fleet(engine, "acme", ["m-000"])
    pipeline, rebirths = sparkplug_pipeline(engine)
    edge = RecordingEdgeNode()
    edge.birth(T0)
    edge.data(T0 + 10, 61.0)
    edge.device_death(T0 + 20)
    pipeline.store(edge.take())
    with engine.connect() as conn:
        state = sparkplug_state.load(conn, "scada", [(GROUP, NODE)])[(GROUP, NODE)]
    assert state["devices"] == {DEVICE: False} and state["online"]
    edge.data(T0 + 30, 62.0)
    edge.data(T0 + 40, 63.0)
    pipeline.store(edge.take())
    assert quarantine_reasons(engine) == ["sparkplug_no_birth", "sparkplug_no_birth"]
    assert rebirths == [(GROUP, NODE)]  # one request for both
    assert [r["temperature_c"] for r in readings(engine)] == [60.0, 61.0]
    edge.birth(T0 + 50)
    edge.data(T0 + 60, 64.0)
    pipeline.store(edge.take())
    assert [r["temperature_c"] for r in readings(engine)] == [60.0, 61.0, 60.0, 64.0]
    assert rebirths == [(GROUP, NODE)]


def test_ddata_of_a_device_without_a_dbirth_is_quarantined_and_asks_for_a_rebirth(engine):
    register_fleet(engine, "acme", ["m-000"])
    pipeline, rebirths = sparkplug_pipeline(engine)
    edge = RecordingEdgeNode()
    edge.birth(T0)
    messages = edge.take()
    pipeline.store(messages[:1])  # the NBIRTH only: its device's DBIRTH was lost
    edge.seq = 2
    edge.data(T0 + 10, 61.0)
    pipeline.store(edge.take())
    assert quarantine_reasons(engine) == ["sparkplug_no_birth"]
    assert rebirths == [(GROUP, NODE)]


def test_quarantine_replay_leaves_sparkplug_rows_as_they_are(engine):
    """Without the check, replay reads the protobuf as JSON and renames the reason (to bad_topic)."""
    register_fleet(engine, "acme", ["m-000"])
    pipeline, _ = sparkplug_pipeline(engine)
    edge = RecordingEdgeNode()
    edge.seq = 9
    edge.data(T0, 61.0)  # before any birth
    pipeline.store(edge.take())
    with engine.connect() as conn:
        before = conn.execute(select(Quarantine.reason, Quarantine.detail, Quarantine.payload)).one()
    report = replay(engine=engine)
    with engine.connect() as conn:
        after = conn.execute(select(Quarantine.reason, Quarantine.detail, Quarantine.payload)).one()
        assert conn.scalar(select(Quarantine.replayed_at)) is None
    assert after == before and after.reason == "sparkplug_no_birth"
    assert (report.examined, report.sparkplug, report.stored, report.not_replayable) == (1, 1, 0, 0)
    assert report.still_quarantined == {}


def test_values_go_through_the_contract_checks_and_nan_is_a_missing_value(engine):
    """Without the NaN rule the contract (now called on the values, no JSON round trip) refuses NaN."""
    register_fleet(engine, "acme", ["m-000"])
    pipeline, _ = sparkplug_pipeline(engine)
    edge = RecordingEdgeNode()
    edge.birth(T0)
    edge.data(T0 + 10, float("nan"))
    text = spb.Metric(T0 + 20, None, spb.DataType.STRING, value="hot", alias=10)
    payload = spb.DData(timestamp=T0 + 20, seq=edge._next(), metrics=(text,))
    edge.sent.append((f"spBv1.0/{GROUP}/DDATA/{NODE}/{DEVICE}", payload.encode()))
    pipeline.store(edge.take())
    assert [r["temperature_c"] for r in readings(engine)] == [60.0, None]
    assert quarantine_reasons(engine) == ["wrong_type"]  # the contract's reason for a text reading
    with engine.connect() as conn:
        topic, payload = conn.execute(select(Quarantine.topic, Quarantine.payload)).one()
    assert topic == "fleet/acme/m-000/telemetry"
    # The JSON text the values stand for, made for the quarantine row only (replayable by the JSON path).
    body = json.loads(payload)
    assert body["readings"] == {"temperature_c": "hot"} and body["ts"].startswith("2026-11-18T")
    assert body["sparkplug"]["topic"] == f"spBv1.0/{GROUP}/DDATA/{NODE}/{DEVICE}"


def _structured_data(edge: RecordingEdgeNode, ts: int, alias: int, kind: str) -> None:
    """DDATA whose one metric (by alias) carries a DataSet or a Template, which pysparkplug cannot encode:
    built with the specification's schema."""
    message = pb.Payload(timestamp=ts, seq=edge._next())
    metric = message.metrics.add()
    metric.alias, metric.timestamp = alias, ts
    if kind == "DataSet":
        metric.datatype = pb.DataSet
        table = metric.dataset_value
        table.num_of_columns = 1
        table.columns.append("temperature")
        table.types.append(pb.Double)
        table.rows.add().elements.add().double_value = 61.0
    else:
        metric.datatype = pb.Template
        metric.template_value.metrics.add(name="temperature", datatype=pb.Double, double_value=61.0)
    edge._send(f"spBv1.0/{GROUP}/DDATA/{NODE}/{DEVICE}", message.SerializeToString())


def test_a_dataset_or_template_on_a_sensor_is_quarantined_as_a_wrong_type(engine):
    """Without the rule both were stored as a null reading, with no trace; on an event metric no event."""
    register_fleet(engine, "acme", ["m-000"])
    pipeline, _ = sparkplug_pipeline(engine)
    edge = RecordingEdgeNode()
    edge.birth(T0)
    _structured_data(edge, T0 + 10, 10, "DataSet")
    _structured_data(edge, T0 + 20, 10, "Template")
    _structured_data(edge, T0 + 30, 12, "DataSet")  # the overtemperature alarm's metric
    pipeline.store(edge.take())
    assert [r["temperature_c"] for r in readings(engine)] == [60.0]
    with engine.connect() as conn:
        rows = conn.execute(select(Quarantine.reason, Quarantine.detail).order_by(Quarantine.id)).all()
        assert conn.scalar(select(func.count()).select_from(MachineEvent)) == 0
    assert rows == [
        ("wrong_type", "readings.temperature_c must be a number, got str '<DataSet>'"),
        ("wrong_type", "readings.temperature_c must be a number, got str '<Template>'"),
    ]


def ignored_deaths(cause: str) -> float:
    """servicecast_ingest_sparkplug_ignored_deaths_total for this cause."""
    sample = "servicecast_ingest_sparkplug_ignored_deaths_total"
    return REGISTRY.get_sample_value(sample, {"cause": cause}) or 0.0


def test_an_ndeath_that_ends_no_session_is_counted_and_logged_once_per_node_and_cause(engine, caplog):
    """Without the rule both kinds were ignored with no trace: no log line, no counter."""
    register_fleet(engine, "acme", ["m-000"])
    pipeline, _ = sparkplug_pipeline(engine)
    edge = RecordingEdgeNode()
    before = {cause: ignored_deaths(cause) for cause in ("never_born", "stale_bd_seq")}
    with caplog.at_level(logging.WARNING, logger="ingest.sparkplug.pipeline"):
        edge.death(3)
        edge.death(3)
        pipeline.store(edge.take())
        edge.bd_seq = 4
        edge.birth(T0)
        edge.death(3)  # the will of the connection before: its birth is gone
        pipeline.store(edge.take())
        edge.death(2)
        edge.data(T0 + 10, 61.0)
        edge.death(4)  # ends the session: no trace
        edge.death(4)  # the same death again
        pipeline.store(edge.take())
    after = {cause: ignored_deaths(cause) - before[cause] for cause in before}
    assert after == {"never_born": 2.0, "stale_bd_seq": 2.0}
    once = "(logged once per node and cause)"
    assert [r.getMessage() for r in caplog.records] == [
        f"ignored NDEATH of {GROUP}/{NODE} with bdSeq 3: no birth with a bdSeq seen {once}",
        f"ignored NDEATH of {GROUP}/{NODE} with bdSeq 3, not its birth's 4: stale {once}",
    ]
    assert [r["temperature_c"] for r in readings(engine)] == [60.0, 61.0]  # the stale deaths ended nothing
    with engine.connect() as conn:
        assert not sparkplug_state.load(conn, "scada", [(GROUP, NODE)])[(GROUP, NODE)]["online"]


def test_an_id_longer_than_the_node_states_key_is_quarantined_alone_in_its_batch(engine):
    """A 200-character group or edge node id beside good messages, in one batch. Without the check, on
    PostgreSQL the batch failed on sparkplug_nodes' varchar(128) (the writer then stored it message by
    message, the long ones as db_rejected); on SQLite their node states were stored under those ids."""
    register_fleet(engine, "acme", ["m-000"])
    longest, long = "g" * 128, "g" * 200
    at_the_limit = {**MAP["machines"][0], "group": longest, "edge_node": longest, "device": None}
    pipeline, rebirths = sparkplug_pipeline(engine, also=[at_the_limit])
    edge = RecordingEdgeNode()
    edge.birth(T0)
    bd_seq = (spb.Metric(T0, "bdSeq", spb.DataType.INT64, value=0),)
    birth = spb.NBirth(timestamp=T0, seq=0, metrics=bd_seq).encode()
    data = spb.NData(timestamp=T0 + 1, seq=1, metrics=bd_seq).encode()
    device = spb.DBirth(timestamp=T0 + 1, seq=1, metrics=()).encode()
    hostile = [
        (f"spBv1.0/{long}/NBIRTH/n1", birth),
        (f"spBv1.0/g1/NBIRTH/{long}", birth),
        (f"spBv1.0/{long}/NDATA/n1", data),
        (f"spBv1.0/g2/DBIRTH/{long}/dev", device),
    ]
    edge.sent += [*hostile, (f"spBv1.0/{longest}/NBIRTH/{longest}", birth)]  # at the limit: accepted
    edge.data(T0 + 10, 61.0)
    outcome, results = pipeline.store(edge.take())
    assert outcome.stored == 2 and outcome.quarantined == 4
    assert [r and r.reason for r in results] == [None, None, *["sparkplug_bad_topic"] * 4, None, None]
    assert [r["temperature_c"] for r in readings(engine)] == [60.0, 61.0]
    with engine.connect() as conn:
        kept = list(conn.execute(select(Quarantine.topic, Quarantine.reason, Quarantine.detail)))
        nodes = {tuple(r) for r in conn.execute(select(SparkplugNode.group_id, SparkplugNode.edge_node))}
    assert [topic for topic, _, _ in kept] == [topic for topic, _ in hostile]
    assert {reason for _, reason, _ in kept} == {"sparkplug_bad_topic"}
    assert "group id of 200 characters, more than 128" in kept[0].detail
    assert "edge node id of 200 characters, more than 128" in kept[1].detail
    assert nodes == {(GROUP, NODE), (longest, longest)}
    assert rebirths == []
