"""Erasure and quarantined messages: the customer's go, those of customers with similar names or the same
machine codes stay (they are replayable data of someone else)."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from fleet import erasure, telemetry
from fleet.tables import Quarantine
from tests.lifecycle import support

ERASED = [
    ("fleet/acme/pump-0/telemetry", b"{not json"),
    ("spBv1.0/acme/DDATA/edge-1/pump-0", b"\x00"),
    ("fleet/acme", b"{}"),  # no machine in the topic: still the tenant's
    ("devices/unknown", b'{"tenant": "acme"}'),  # a topic of no tenant, a payload naming it
]
KEPT = [
    ("fleet/acme-2/pump-0/telemetry", b"{not json"),
    ("fleet/globex/pump-0/telemetry", b"{not json"),
    ("spBv1.0/globex/DDATA/edge-1/pump-0", b"\x00"),
    ("fleet/globex/pump-07/telemetry", b'{"note": "acme"}'),  # another tenant's message
    ("devices/unknown", b"acme-2 and pump-07 say hi"),
]


def test_erasure_removes_the_customers_quarantined_messages_and_no_one_elses(engine, tmp_path) -> None:
    for tenant in ("acme", "acme-2", "globex"):
        support.register(engine, tenant, ["pump-0"])
    with engine.begin() as conn:
        telemetry.insert_quarantine(
            conn,
            [
                {
                    "topic": topic,
                    "payload": payload,
                    "reason": "bad_json",
                    "detail": "test",
                    "digest": hashlib.sha256(topic.encode() + payload).hexdigest(),
                    "received_at": support.START,
                }
                for topic, payload in ERASED + KEPT
            ],
        )

    receipt = erasure.erase(
        engine, tenant="acme", confirm="acme", by="cli:dpo", archive_url=str(tmp_path), now=support.START
    )

    with engine.connect() as conn:
        left = conn.execute(select(Quarantine.topic, Quarantine.payload).order_by(Quarantine.id)).all()
    assert [(topic, bytes(payload)) for topic, payload in left] == KEPT
    assert receipt["counts"]["quarantine"] == len(ERASED)
