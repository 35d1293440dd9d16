"""The ingest queue: bounded in messages and in payload bytes; the writer takes whole batches."""

from __future__ import annotations

import threading
import time

from ingest.inbox import Inbox
from ingest.schemas import Envelope


def envelope(size: int, mid: int = 1) -> Envelope:
    """A message of `size` payload bytes."""
    return Envelope("fleet/acme/m-000/telemetry", b"x" * size, 1, mid, time.time())


def put_in_thread(inbox: Inbox, item: Envelope) -> threading.Thread:
    thread = threading.Thread(target=inbox.put, args=(item,), daemon=True)
    thread.start()
    return thread


def test_put_waits_while_the_byte_bound_is_reached_and_resumes_when_a_batch_is_taken():
    inbox = Inbox(max_messages=100, max_bytes=1000)
    for mid in range(3):
        assert inbox.put(envelope(300, mid)) is False
    blocked = put_in_thread(inbox, envelope(300, 9))
    blocked.join(0.3)
    assert blocked.is_alive(), "a fourth 300-byte message must wait: 1,200 bytes > 1,000"
    assert (inbox.qsize(), inbox.nbytes()) == (3, 900)
    batch = inbox.get_batch(2, wait_s=0.1, linger_s=0.0, idle_s=0.01)
    assert [e.mid for e in batch] == [0, 1]
    blocked.join(2)
    assert not blocked.is_alive()
    assert (inbox.qsize(), inbox.nbytes()) == (2, 600)


def test_put_waits_while_the_message_bound_is_reached():
    inbox = Inbox(max_messages=2, max_bytes=10**6)
    inbox.put(envelope(1, 1))
    inbox.put(envelope(1, 2))
    blocked = put_in_thread(inbox, envelope(1, 3))
    blocked.join(0.3)
    assert blocked.is_alive()
    inbox.get_batch(10, wait_s=0.1, linger_s=0.0, idle_s=0.01)
    blocked.join(2)
    assert not blocked.is_alive()


def test_one_message_larger_than_the_byte_bound_still_passes_alone():
    inbox = Inbox(max_messages=10, max_bytes=100)
    assert inbox.put(envelope(500)) is False
    assert [len(e.payload) for e in inbox.get_batch(10, wait_s=0.1, linger_s=0, idle_s=0.01)] == [500]


def test_a_batch_is_handed_out_when_full_or_when_the_stream_pauses():
    inbox = Inbox(max_messages=1000, max_bytes=10**6)
    assert inbox.get_batch(5, wait_s=0.05, linger_s=1.0, idle_s=0.01) == []

    def feed() -> None:
        for mid in range(12):
            inbox.put(envelope(10, mid))
            time.sleep(0.001)

    feeder = threading.Thread(target=feed)
    feeder.start()
    first = inbox.get_batch(5, wait_s=1.0, linger_s=5.0, idle_s=0.2)
    feeder.join()
    assert [e.mid for e in first] == [0, 1, 2, 3, 4]
    started = time.monotonic()
    rest = inbox.get_batch(100, wait_s=1.0, linger_s=5.0, idle_s=0.05)
    assert [e.mid for e in rest] == list(range(5, 12))
    assert time.monotonic() - started < 1.0, "a paused stream must not wait out the whole linger"


def test_closing_releases_a_put_that_waits_and_refuses_what_comes_after():
    inbox = Inbox(max_messages=2, max_bytes=10**6)
    inbox.put(envelope(1, 1))
    inbox.put(envelope(1, 2))
    blocked = put_in_thread(inbox, envelope(1, 3))
    blocked.join(0.3)
    assert blocked.is_alive()
    inbox.close()
    blocked.join(5)
    assert not blocked.is_alive(), "a closed inbox must not keep the network thread waiting for a dead writer"
    inbox.put(envelope(1, 4))
    # Refused, not queued: nobody acks them, so the broker delivers them again to the next session.
    assert [e.mid for e in inbox.get_batch(10, wait_s=0.1, linger_s=0.0, idle_s=0.01)] == [1, 2]
