"""The QoS-1 publisher on a real Mosquitto: its window bounds unacknowledged messages; every PUBACK counts."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from simulators.publisher import Publisher
from tests import services


def _stream(n: int) -> list[tuple[str, bytes]]:
    return [(f"fleet/acme/m{i % 7}/telemetry", b'{"seq":%d}' % i) for i in range(n)]


def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def test_every_message_is_acknowledged_and_counted_through_a_small_window(mosquitto):
    with Publisher(mosquitto.url, max_inflight=10) as publisher:
        assert publisher.publish_many(_stream(2_000)) == 2_000
        assert publisher.wait(60)
        assert publisher.acked_count == 2_000 and all(publisher.acked())


class _Lingering(Publisher):
    """Its network thread lingers after counting each PUBACK, as one descheduled under load does."""

    def _on_publish(self, *args: object) -> None:
        super()._on_publish(*args)
        time.sleep(0.3)


def test_wait_returns_with_every_message_it_counted_acknowledged(mosquitto):
    # paho calls on_publish before it marks the message acknowledged: the count ran ahead of `acked()`, and
    # test_reliability's broker restart once saw 5,999 of 6,000 acknowledged after `wait()` returned True.
    with _Lingering(mosquitto.url) as publisher:
        publisher.publish_many(_stream(3))
        assert publisher.wait(60)
        assert publisher.acked() == [True] * 3


def test_the_window_holds_publishing_while_the_broker_acknowledges_nothing(mosquitto):
    first, extra = _stream(4)[:3], _stream(4)[3]
    with Publisher(mosquitto.url, max_inflight=3, ack_timeout_s=0.5) as publisher:
        mosquitto.process.send_signal(signal.SIGSTOP)
        try:
            while not _stopped(mosquitto.process.pid):
                time.sleep(0.01)
            assert publisher.publish_many(first) == 3
            with pytest.raises(TimeoutError):
                publisher.publish(*extra)
            assert not publisher.wait(0.2) and publisher.acked_count == 0
        finally:
            mosquitto.process.send_signal(signal.SIGCONT)
        assert publisher.wait(60)
        assert publisher.acked_count == 3 and publisher.acked() == [True] * 3


def test_a_refused_login_raises_at_once_with_the_brokers_reason(tmp_path):
    (tmp_path / "broker").mkdir()
    broker = services.Mosquitto(tmp_path / "broker", passwords={"sim": "right"}).start()
    try:
        with pytest.raises(ConnectionError, match="refused the connection") as refused:
            Publisher(f"mqtt://sim:wrong@127.0.0.1:{broker.port}", protocol="3.1.1")
    finally:
        broker.stop()
    assert "wrong" not in str(refused.value)
