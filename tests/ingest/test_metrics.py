"""Ingest metrics: the bulk histogram update counts exactly as one observe per value."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from ingest.metrics import observe_many

BUCKETS = (0.01, 0.1, 1, 10, 60)
VALUES = [0.0, 0.01, 0.010001, 0.5, 1, 1.5, 10, 59.9, 60, 61, 1e9, -3]


def samples(histogram: Histogram, name: str) -> dict[tuple[str, str], float]:
    return {
        (s.name.removeprefix(name), s.labels.get("le", "")): s.value
        for metric in histogram.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def test_observe_many_equals_observe_one_by_one():
    one = Histogram("one", "one by one", buckets=BUCKETS, registry=CollectorRegistry())
    many = Histogram("many", "at once", buckets=BUCKETS, registry=CollectorRegistry())
    for value in VALUES:
        one.observe(value)
    observe_many(many, VALUES[:5])
    observe_many(many, VALUES[5:])
    observe_many(many, [])
    assert samples(one, "one") == samples(many, "many")
    assert samples(many, "many")[("_count", "")] == len(VALUES)
    assert samples(many, "many")[("_bucket", "+Inf")] == len(VALUES)
