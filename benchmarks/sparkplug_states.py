"""Node-state bytes written a batch by the Sparkplug host, in-process: 100 edge nodes whose device births
declare the benchmark's five metrics and N more, then batches of 500 DDATA of five metrics by alias.

`python -m benchmarks.sparkplug_states --declared 500 --batches 20 [--database-url URL]` (default: a new
SQLite file) prints the bytes of node state JSON written a batch and CPU and wall µs a message.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import orjson

from benchmarks.ingest import MACHINES, fresh_store, machine_codes
from benchmarks.ingest_sparkplug import DEVICE, SENSORS, T0, _payload, mapping
from fleet import sparkplug_state
from ingest.pipeline import Pipeline
from ingest.sparkplug import sparkplug_b_pb2 as pb
from ingest.sparkplug.pipeline import SparkplugPipeline

GROUP = "bench"


def births(declared: int) -> list[tuple[str, bytes, float]]:
    """Each node's NBIRTH and its device's DBIRTH, naming the five sensors and `declared` metrics more."""
    out = []
    for node in machine_codes(MACHINES):
        control = [("bdSeq", None, pb.Int64, 0), ("Node Control/Rebirth", None, pb.Boolean, False)]
        out.append((f"spBv1.0/{GROUP}/NBIRTH/{node}", _payload(T0, 0, control), 0.0))
        named = [(name, alias, pb.Double, 0.0) for alias, name in enumerate(SENSORS)]
        named += [(f"Extra/{i}", 100 + i, pb.Double, 0.0) for i in range(declared)]
        out.append((f"spBv1.0/{GROUP}/DBIRTH/{node}/{DEVICE}", _payload(T0, 1, named), 0.0))
    return out


def data(batch: int) -> list[tuple[str, bytes, float]]:
    """The batch-th 500 DDATA, the nodes in turn, seq going on from their births."""
    nodes, out = machine_codes(MACHINES), []
    for i in range(batch * 500, (batch + 1) * 500):
        seq, machine = divmod(i, MACHINES)
        metrics = [(None, alias, pb.Double, 1.0 + i % 7) for alias in range(5)]
        topic = f"spBv1.0/{GROUP}/DDATA/{nodes[machine]}/{DEVICE}"
        out.append((topic, _payload(T0 + 1 + seq, (seq + 2) % 256, metrics), 0.0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--declared", type=int, default=500)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    engine = fresh_store(url, "acme")
    written: list[int] = []
    save = sparkplug_state.save
    births_apart = hasattr(sparkplug_state, "BIRTH_KEYS")  # to run it on the code before as well

    def counting(conn, host_id, states, *born) -> None:  # noqa: ANN001
        kept = sparkplug_state.BIRTH_KEYS if births_apart else ()
        size = sum(len(orjson.dumps({k: v for k, v in s.items() if k not in kept})) for s in states.values())
        size += sum(len(orjson.dumps({k: states[n].get(k) for k in kept})) for n in (born[0] if born else ()))
        written.append(size)
        save(conn, host_id, states, *born)

    sparkplug_state.save = counting
    pipeline = SparkplugPipeline(
        pipeline=Pipeline(engine=engine), mapping=mapping(GROUP, "acme"), host_id="b"
    )
    pipeline.store(births(args.declared))
    written.clear()
    batches = [data(b) for b in range(args.batches)]
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches:
        pipeline.store(batch)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = args.batches * 500
    print(
        f"declared={args.declared} db={engine.dialect.name} messages={n} "
        f"state_bytes_per_batch={sum(written) / len(written):.0f} cpu_us_per_msg={cpu / n * 1e6:.1f} "
        f"wall_us_per_msg={wall / n * 1e6:.1f}"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
