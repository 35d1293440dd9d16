"""Live publishing: a simulated fleet or a C-MAPSS file sent over MQTT (QoS 1) at real or accelerated time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from fleet import migrate
from fleet.db import make_engine
from simulators import cmapss, ground_truth
from simulators.engine import SimulationRun
from simulators.messages import Message, iter_messages
from simulators.publisher import WINDOW_TIMEOUT_S, Publisher
from simulators.registration import register_machines

PROGRESS_EVERY = 1_000
Progress = Callable[[int], None]


@dataclass
class PublishReport:
    """What was published: valid and invalid messages, PUBACKs received, seconds, and the run id if stored."""

    valid: int
    invalid: int
    acked: int
    seconds: float
    run_id: int | None = None

    @property
    def sent(self) -> int:
        """Messages published."""
        return self.valid + self.invalid

    @property
    def acked_per_s(self) -> float:
        """Acknowledged messages per second."""
        return self.acked / self.seconds if self.seconds else 0.0


class PublishInterrupted(KeyboardInterrupt):
    """Ctrl-C while publishing; carries what was sent and acknowledged up to then."""

    def __init__(self, report: PublishReport) -> None:
        super().__init__(report)
        self.report = report


def publish_messages(
    messages: Iterable[Message],
    *,
    url: str,
    period_s: float,
    speed: float | None = None,
    client_id: str = "",
    protocol: str = "5",
    progress: Progress | None = None,
    ack_timeout: float = 120.0,
) -> PublishReport:
    """Publish in order; message seq n is due (n − 1)·period_s simulated seconds after the first.

    speed: simulated seconds per wall second (1 = real time); None or 0 publishes as fast as the broker acks.
    """
    with Publisher(url, client_id=client_id, protocol=protocol) as publisher:
        return _send(
            publisher, messages, period_s=period_s, speed=speed, progress=progress, ack_timeout=ack_timeout
        )


def _send(
    publisher: Publisher,
    messages: Iterable[Message],
    *,
    period_s: float,
    speed: float | None,
    progress: Progress | None,
    ack_timeout: float = 120.0,
    run_id: int | None = None,
) -> PublishReport:
    """Publish through a connected publisher, paced as `publish_messages` says; wait for the PUBACKs.

    Ctrl-C raises PublishInterrupted with the counts so far; `run_id` is the stored ground truth.
    """
    counts = [0, 0]  # valid, invalid
    started = time.perf_counter()
    try:
        _publish_paced(publisher, messages, counts, period_s=period_s, speed=speed, progress=progress)
        publisher.wait(ack_timeout)
    except KeyboardInterrupt:
        seconds = time.perf_counter() - started
        raise PublishInterrupted(PublishReport(*counts, publisher.acked_count, seconds, run_id)) from None
    if progress:
        progress(sum(counts) % PROGRESS_EVERY)
    return PublishReport(*counts, publisher.acked_count, time.perf_counter() - started, run_id)


def _publish_paced(
    publisher: Publisher,
    messages: Iterable[Message],
    counts: list[int],
    *,
    period_s: float,
    speed: float | None,
    progress: Progress | None,
) -> None:
    """Publish every message on time, counting each valid or invalid one in `counts` once handed over."""
    pace = speed if speed and speed > 0 else None
    started = time.perf_counter()
    due_offset = 0.0
    for n, msg in enumerate(messages, 1):
        if pace is not None and msg.seq is not None:
            offset = (msg.seq - 1) * period_s
            if offset != due_offset:
                due_offset = offset
                wait = started + offset / pace - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
        publisher.publish(msg.topic, msg.payload, track=False)
        counts[0 if msg.valid else 1] += 1
        if progress and n % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)


def _engine(database_url: str):  # noqa: ANN202
    engine = make_engine(database_url)
    migrate.ensure_schema(engine)
    return engine


def publish_run(
    run: SimulationRun,
    *,
    url: str,
    speed: float | None = None,
    database_url: str | None = None,
    client_id: str = "",
    protocol: str = "5",
    progress: Progress | None = None,
    ack_timeout_s: float = WINDOW_TIMEOUT_S,
) -> PublishReport:
    """Publish a simulated fleet's messages (bad payloads included); store its ground truth first if asked.

    With a database the machines are registered too, so an ingester without auto-registration accepts them.
    A broker that acknowledges nothing for `ack_timeout_s` raises TimeoutError.
    """
    # Connected first: a broker that is down or refuses the login leaves no ground truth of unsent messages.
    with Publisher(url, client_id=client_id, protocol=protocol, ack_timeout_s=ack_timeout_s) as publisher:
        run_id = None
        if database_url:
            engine = _engine(database_url)
            try:
                ids = register_machines(engine=engine, machines=run.machines)
                run_id = ground_truth.write_run(engine, run, ids)
            finally:
                engine.dispose()
        return _send(
            publisher,
            iter_messages(run),
            period_s=run.config.step_seconds,
            speed=speed,
            progress=progress,
            ack_timeout=ack_timeout_s,
            run_id=run_id,
        )


def replay_cmapss(
    data: pd.DataFrame | str | Path,
    *,
    url: str,
    tenant: str = "cmapss",
    speed: float | None = None,
    cycle_seconds: float = 3600.0,
    start: datetime = cmapss.DEFAULT_START,
    units: int | None = None,
    database_url: str | None = None,
    client_id: str = "",
    protocol: str = "5",
    progress: Progress | None = None,
    ack_timeout_s: float = WINDOW_TIMEOUT_S,
) -> PublishReport:
    """Publish a C-MAPSS run-to-failure file, one machine per unit and one message per cycle.

    units: only the first N units. With a database, the engines are registered and each unit's failure at
    its last cycle is stored as ground truth.
    """
    source = str(data) if isinstance(data, str | Path) else None
    df = cmapss.read_cmapss(data) if source else data
    if units is not None:
        df = df[df["unit"].isin(sorted(df["unit"].unique())[:units])]
    with Publisher(url, client_id=client_id, protocol=protocol, ack_timeout_s=ack_timeout_s) as publisher:
        run_id = None
        if database_url:
            failures = cmapss.cmapss_failures(df, tenant=tenant, start=start, cycle_seconds=cycle_seconds)
            machines = failures[["tenant", "machine", "machine_type"]]
            config = {
                "source": Path(source).name if source else None,
                "units": sorted(int(u) for u in df["unit"].unique()),
                "tenant": tenant,
                "start": start.isoformat(),
                "cycle_seconds": cycle_seconds,
            }
            engine = _engine(database_url)
            try:
                ids = register_machines(engine=engine, machines=machines)
                run_id = ground_truth.write_events(
                    engine, kind="cmapss", seed=None, config=config, ids=ids, failures=failures
                )
            finally:
                engine.dispose()
        messages = cmapss.iter_cmapss_messages(df, tenant=tenant, start=start, cycle_seconds=cycle_seconds)
        return _send(
            publisher,
            messages,
            period_s=cycle_seconds,
            speed=speed,
            progress=progress,
            ack_timeout=ack_timeout_s,
            run_id=run_id,
        )
