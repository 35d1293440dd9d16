"""Edge nodes that send what a host must survive, through the pipeline on a real store."""

from __future__ import annotations

import pysparkplug as spb
from sqlalchemy import select

from fleet.settings import Settings
from fleet.tables import Machine, Quarantine, Telemetry
from ingest.contract import Limits
from ingest.pipeline import Pipeline
from ingest.sparkplug import sparkplug_b_pb2 as pb
from ingest.sparkplug.mapping import Mapping
from ingest.sparkplug.pipeline import SparkplugPipeline
from tests.ingest.support import quarantine_reasons, register_fleet
from tests.sparkplug.support import DEVICE, GROUP, MAP, NODE, T0, RecordingEdgeNode, sparkplug_pipeline

TEMPERATURE = 10  # its alias in the births below
YEAR_2099 = 4_070_908_800_000  # ms


def readings(engine, machine: str = "m-000") -> list[dict]:
    query = select(Telemetry.readings).join(Machine).where(Machine.code == machine).order_by(Telemetry.seq)
    with engine.connect() as conn:
        return list(conn.scalars(query))


def without_datatypes(payload: bytes) -> bytes:
    """The payload as a node sends DATA when it follows the specification: no datatype outside births."""
    message = pb.Payload.FromString(payload)
    for metric in message.metrics:
        metric.ClearField("datatype")
    return message.SerializeToString()


def int32_births(edge: RecordingEdgeNode, ts: int) -> None:
    """NBIRTH, then a DBIRTH declaring the temperature an Int32."""
    edge.birth(ts)
    edge.sent.pop()  # its DBIRTH, made again with an Int32 temperature
    edge.seq = 1
    metric = spb.Metric(ts, "Spindle/Temperature", spb.DataType.INT32, value=20, alias=TEMPERATURE)
    birth = spb.DBirth(timestamp=ts, seq=edge._next(), metrics=(metric,))
    edge._send(f"spBv1.0/{GROUP}/DBIRTH/{NODE}/{DEVICE}", birth.encode())


def test_a_negative_int32_sent_without_its_datatype_keeps_its_sign(engine):
    register_fleet(engine, "acme", ["m-000"])
    pipeline, _ = sparkplug_pipeline(engine)
    edge = RecordingEdgeNode()
    int32_births(edge, T0)
    metric = spb.Metric(T0 + 10, None, spb.DataType.INT32, value=-5, alias=TEMPERATURE)
    data = spb.DData(timestamp=T0 + 10, seq=edge._next(), metrics=(metric,))
    edge._send(f"spBv1.0/{GROUP}/DDATA/{NODE}/{DEVICE}", without_datatypes(data.encode()))
    pipeline.store(edge.take())
    assert quarantine_reasons(engine) == []
    assert [r["temperature_c"] for r in readings(engine)] == [20, -5]


def test_one_message_from_a_clock_in_the_future_does_not_blind_the_seq_checks(engine):
    register_fleet(engine, "acme", ["m-000"])
    pipeline, rebirths = sparkplug_pipeline(engine)
    edge = RecordingEdgeNode()
    edge.birth(T0)
    edge.data(YEAR_2099, 61.0)  # the node's clock jumped, then NTP set it right
    edge.data(T0 + 10, 62.0)
    edge.seq += 3  # three messages lost on the way
    edge.data(T0 + 20, 63.0)
    pipeline.store(edge.take())
    assert quarantine_reasons(engine) == ["bad_timestamp"]
    assert [r["temperature_c"] for r in readings(engine)] == [60.0, 62.0, 63.0]
    assert rebirths == [(GROUP, NODE)]  # the gap is seen, as without the message from 2099


def test_a_device_reborn_with_an_unsigned_metric_no_longer_reads_it_as_signed(engine):
    """A DBIRTH (after a DDEATH, say a firmware update) that declares a metric UInt32 instead of Int32."""
    register_fleet(engine, "acme", ["m-000"])
    pipeline, _ = sparkplug_pipeline(engine)
    edge = RecordingEdgeNode()
    int32_births(edge, T0)
    edge.device_death(T0 + 5)
    metric = spb.Metric(T0 + 6, "Spindle/Temperature", spb.DataType.UINT32, value=7, alias=TEMPERATURE)
    birth = spb.DBirth(timestamp=T0 + 6, seq=edge._next(), metrics=(metric,))
    edge._send(f"spBv1.0/{GROUP}/DBIRTH/{NODE}/{DEVICE}", birth.encode())
    metric = spb.Metric(T0 + 10, None, spb.DataType.UINT32, value=3_000_000_000, alias=TEMPERATURE)
    data = spb.DData(timestamp=T0 + 10, seq=edge._next(), metrics=(metric,))
    edge._send(f"spBv1.0/{GROUP}/DDATA/{NODE}/{DEVICE}", without_datatypes(data.encode()))
    pipeline.store(edge.take())
    assert quarantine_reasons(engine) == []
    assert [r["temperature_c"] for r in readings(engine)] == [20, 7, 3_000_000_000]


def test_two_devices_of_one_node_keep_their_own_aliases_and_datatypes(engine):
    """Metric names are a device's own (two presses both send Spindle/Temperature), and some nodes number
    aliases per device although the specification asks for one numbering per node."""
    register_fleet(engine, "acme", ["m-000", "m-001"])
    press8 = {**MAP["machines"][0], "device": "press-8", "machine": "m-001"}
    pipeline = SparkplugPipeline(
        pipeline=Pipeline(engine=engine),
        mapping=Mapping.from_dict({"machines": [*MAP["machines"], press8]}),
        host_id="scada",
    )
    edge = RecordingEdgeNode()
    int32_births(edge, T0)  # press-7: Spindle/Temperature an Int32 under alias 10
    metrics = (
        spb.Metric(T0, "Spindle/Vibration", spb.DataType.DOUBLE, value=2.0, alias=TEMPERATURE),
        spb.Metric(T0, "Spindle/Temperature", spb.DataType.DOUBLE, value=30.5, alias=TEMPERATURE + 1),
    )
    birth = spb.DBirth(timestamp=T0, seq=edge._next(), metrics=metrics)
    edge._send(f"spBv1.0/{GROUP}/DBIRTH/{NODE}/press-8", birth.encode())
    metric = spb.Metric(T0 + 10, None, spb.DataType.INT32, value=-5, alias=TEMPERATURE)
    data = spb.DData(timestamp=T0 + 10, seq=edge._next(), metrics=(metric,))
    edge._send(f"spBv1.0/{GROUP}/DDATA/{NODE}/{DEVICE}", without_datatypes(data.encode()))
    metric = spb.Metric(T0 + 10, None, spb.DataType.DOUBLE, value=31.5, alias=TEMPERATURE + 1)
    data = spb.DData(timestamp=T0 + 10, seq=edge._next(), metrics=(metric,))
    edge._send(f"spBv1.0/{GROUP}/DDATA/{NODE}/press-8", data.encode())
    pipeline.store(edge.take())
    assert quarantine_reasons(engine) == []
    assert readings(engine) == [{"temperature_c": 20}, {"temperature_c": -5}]
    assert readings(engine, "m-001") == [
        {"vibration_mm_s": 2.0, "temperature_c": 30.5},
        {"temperature_c": 31.5},
    ]


def test_a_future_margin_past_the_calendar_means_no_limit_here_too(engine):
    register_fleet(engine, "acme", ["m-000"])
    limits = Limits.from_settings(Settings(ingest_future_margin_s=1e12))  # "switch the future check off"
    pipeline = SparkplugPipeline(
        pipeline=Pipeline(engine=engine, limits=limits),
        mapping=Mapping.from_dict(MAP),
        host_id="scada",
        on_rebirth=lambda group, node: None,
    )
    edge = RecordingEdgeNode()
    edge.birth(T0)
    edge.data(YEAR_2099, 61.0)
    pipeline.store(edge.take())
    assert quarantine_reasons(engine) == []
    assert [r["temperature_c"] for r in readings(engine)] == [60.0, 61.0]


def test_a_birth_giving_one_alias_to_two_metrics_is_quarantined_not_guessed(engine):
    """Alias 10 names the temperature and the vibration: which one DDATA by alias 10 carries is unknowable."""
    register_fleet(engine, "acme", ["m-000"])
    pipeline, rebirths = sparkplug_pipeline(engine)
    edge = RecordingEdgeNode()
    edge.birth(T0)
    edge.sent.pop()  # its DBIRTH, made again with the clash
    edge.seq = 1
    metrics = (
        spb.Metric(T0, "Spindle/Temperature", spb.DataType.DOUBLE, value=60.0, alias=TEMPERATURE),
        spb.Metric(T0, "Spindle/Vibration", spb.DataType.DOUBLE, value=2.0, alias=TEMPERATURE),
    )
    birth = spb.DBirth(timestamp=T0, seq=edge._next(), metrics=metrics)
    edge._send(f"spBv1.0/{GROUP}/DBIRTH/{NODE}/{DEVICE}", birth.encode())
    edge.data(T0 + 10, 77.0)
    pipeline.store(edge.take())
    assert readings(engine) == []
    assert quarantine_reasons(engine) == ["sparkplug_bad_payload", "sparkplug_no_birth"]
    with engine.connect() as conn:
        detail = conn.scalars(select(Quarantine.detail).order_by(Quarantine.id)).first()
    assert "alias 10 names both 'Spindle/Temperature' and 'Spindle/Vibration'" in detail
    assert rebirths == []  # a rebirth would bring the same clash back


def test_a_node_birth_with_an_alias_clash_leaves_the_node_unborn(engine):
    register_fleet(engine, "acme", ["m-000"])
    pipeline, rebirths = sparkplug_pipeline(engine)
    edge = RecordingEdgeNode()
    node = spb.NBirth(
        timestamp=T0,
        seq=edge._next(),
        metrics=(
            spb.Metric(T0, "bdSeq", spb.DataType.INT64, value=0, alias=1),
            spb.Metric(T0, "Node Control/Rebirth", spb.DataType.BOOLEAN, value=False, alias=1),
        ),
    )
    edge._send(f"spBv1.0/{GROUP}/NBIRTH/{NODE}", node.encode())
    edge.seq = 1
    edge.birth(T0 + 1)
    edge.sent.pop(1)  # the well-formed NBIRTH; its DBIRTH stays
    edge.seq = 2
    edge.data(T0 + 10, 61.0)
    pipeline.store(edge.take())
    assert readings(engine) == []
    assert quarantine_reasons(engine) == ["sparkplug_bad_payload", "sparkplug_no_birth", "sparkplug_no_birth"]
    assert rebirths == []


def test_a_huge_rejected_message_leaves_a_bounded_quarantine_row(engine):
    """Quarantine keeps bounded raw bytes: a prefix of a payload past the limit, no 10 MB text in a row."""
    register_fleet(engine, "acme", ["m-000"])
    pipeline, _ = sparkplug_pipeline(engine)
    edge = RecordingEdgeNode()
    edge.birth(T0)
    huge = 1_000_000
    metric = spb.Metric(T0 + 10, None, spb.DataType.STRING, value="x" * huge, alias=TEMPERATURE)
    data = spb.DData(timestamp=T0 + 10, seq=edge._next(), metrics=(metric,))
    edge._send(f"spBv1.0/{GROUP}/DDATA/{NODE}/{DEVICE}", data.encode())
    named = pb.Payload(timestamp=T0 + 20, seq=edge._next())
    far = named.metrics.add()
    far.name, far.timestamp, far.datatype, far.double_value = "n" * huge, YEAR_2099 * 10, pb.Double, 1.0
    edge._send(f"spBv1.0/{GROUP}/DDATA/{NODE}/{DEVICE}", named.SerializeToString())
    edge._send(f"spBv1.0/{GROUP}/DDATA/{NODE}/{DEVICE}", b"\xff" * huge)
    pipeline.store(edge.take())
    with engine.connect() as conn:
        rows = conn.execute(select(Quarantine).order_by(Quarantine.id)).all()
    assert [row.reason for row in rows] == ["wrong_type", "sparkplug_bad_payload", "sparkplug_bad_payload"]
    assert all(len(row.payload) <= 1024 and len(row.detail) <= 1000 for row in rows), [
        (len(row.payload), len(row.detail)) for row in rows
    ]
    assert rows[2].original_size == huge


# A device of the node in the map, which the node never bears.
GHOST = {**MAP["machines"][0], "device": "ghost", "machine": "m-001"}


def _ghost_cycles(pipeline, edge: RecordingEdgeNode, cycles: int) -> None:
    """A node that answers each rebirth request with its births, then sends DDATA of a mapped device that it
    never bears."""
    for cycle in range(cycles):
        ts = T0 + 100 * cycle
        edge.birth(ts)
        ghost = spb.DData(
            timestamp=ts + 1,
            seq=edge._next(),
            metrics=(spb.Metric(ts + 1, None, spb.DataType.DOUBLE, value=1.0, alias=TEMPERATURE),),
        )
        edge._send(f"spBv1.0/{GROUP}/DDATA/{NODE}/ghost", ghost.encode())
        pipeline.store(edge.take())


def test_a_fault_that_every_rebirth_brings_back_asks_at_most_once_an_interval(engine):
    register_fleet(engine, "acme", ["m-000"])
    pipeline, rebirths = sparkplug_pipeline(
        engine, also=[GHOST]
    )  # SERVICECAST_SPARKPLUG_REBIRTH_INTERVAL_S: 60 s
    _ghost_cycles(pipeline, RecordingEdgeNode(), 5)
    assert quarantine_reasons(engine) == ["sparkplug_no_birth"] * 5
    assert rebirths == [(GROUP, NODE)]


def test_no_interval_asks_after_every_birth(engine):
    register_fleet(engine, "acme", ["m-000"])
    rebirths: list = []
    pipeline = SparkplugPipeline(
        pipeline=Pipeline(engine=engine),
        mapping=Mapping.from_dict({"machines": [*MAP["machines"], GHOST]}),
        host_id="scada",
        on_rebirth=lambda group, node: rebirths.append((group, node)),
        rebirth_interval_s=0,
    )
    _ghost_cycles(pipeline, RecordingEdgeNode(), 5)
    assert rebirths == [(GROUP, NODE)] * 5


def test_a_flood_of_node_names_keeps_a_bounded_state_cache_and_no_node_loses_its_birth(engine):
    """Each Sparkplug topic names its node: without a bound, every name ever seen stays in the writer's memory
    (and its dict is copied for each batch). States left out are read again from the store when needed. (Nodes
    the map does not name keep no state: these are in the map.)"""
    register_fleet(engine, "acme", ["m-000"])
    ghosts = [{**MAP["machines"][0], "edge_node": f"ghost-{i}", "device": None} for i in range(200)]
    pipeline, _ = sparkplug_pipeline(engine, also=ghosts)
    pipeline.state_cache = 50
    edge = RecordingEdgeNode()
    edge.birth(T0)
    pipeline.store(edge.take())
    probe = spb.NData(timestamp=T0 + 5, seq=0, metrics=()).encode()
    flood = [(f"spBv1.0/{GROUP}/NDATA/ghost-{i}", probe, 0.0) for i in range(200)]
    for start in range(0, len(flood), 20):
        pipeline.store(flood[start : start + 20])
        assert len(pipeline._states) <= 50
    edge.data(T0 + 10, 61.0)
    pipeline.store(edge.take())
    assert [r["temperature_c"] for r in readings(engine)] == [60.0, 61.0]
    assert quarantine_reasons(engine) == ["sparkplug_no_birth"] * 200
