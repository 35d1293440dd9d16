"""Erasure and quarantined messages: the customer's go, those of customers with similar names or the same
machine codes stay (they are replayable data of someone else)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from fleet import erasure, telemetry
from fleet.tables import ErasureReceipt, Quarantine
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


def test_erasing_again_removes_what_arrived_after_the_erasure_and_then_says_there_is_nothing(
    engine, tmp_path
) -> None:
    support.register(engine, "acme", ["pump-0"])
    support.register(engine, "globex", ["pump-0"])
    erase = dict(confirm="acme", by="cli:dpo", archive_url=str(tmp_path), now=support.START)
    erasure.erase(engine, tenant="acme", **erase)
    # A message the broker had queued for the ingester arrives late: no such customer any more.
    late = [("fleet/acme/pump-0/telemetry", b'{"seq": 9}'), ("fleet/globex/pump-0/telemetry", b"{not json")]
    with engine.begin() as conn:
        telemetry.insert_quarantine(
            conn,
            [
                {
                    "topic": topic,
                    "payload": payload,
                    "reason": "unknown_customer",
                    "detail": "test",
                    "digest": hashlib.sha256(payload).hexdigest(),
                    "received_at": support.START,
                }
                for topic, payload in late
            ],
        )

    receipt = erasure.erase(engine, tenant="acme", **erase)

    assert receipt["counts"]["quarantine"] == 1 and receipt["pseudonym"].startswith("erased-")
    with engine.connect() as conn:
        assert conn.scalars(select(Quarantine.topic)).all() == [late[1][0]]
        assert len(conn.scalars(select(ErasureReceipt.pseudonym)).all()) == 2
    with pytest.raises(LookupError, match="no customer 'acme'"):
        erasure.erase(engine, tenant="acme", **erase)
