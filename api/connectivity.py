"""Whether a machine is still sending: online, degraded (a fraction of its usual rate) or silent since when.

Silence and the last hour's rate are judged on when messages arrived (`received_at`), never on the
readings' own time: a replay or an import of old data is not silence, and a machine whose clock is wrong
is not online because of it. The usual rate is the readings the machine took in the 24 hours before that
hour (by their own time), so a history backfilled or imported in one go does not inflate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api import estimate
from fleet.tables import Machine, Telemetry

# The alerts about a machine's messages rather than its parts: a finding names no failed component.
NO_DATA = "no_data"
LOW_DATA_RATE = "low_data_rate"
MODES = (NO_DATA, LOW_DATA_RATE)
RATE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Connectivity:
    """A machine's connectivity: its state, since when (silent) and its share of the usual rate."""

    state: str  # "online" | "degraded" | "silent" | "no data"
    last_received: datetime | None
    share: float | None = None


def words(found: Connectivity) -> str:
    """The state as every page says it."""
    if found.state == "silent":
        return f"silent since {estimate.stamp(found.last_received)}"
    if found.state == "degraded":
        return f"degraded: {share_words(found.share)} of its usual rate in the last hour"
    return found.state


def share_words(share: float) -> str:
    """A share of the usual rate as pages and alerts say it: `25 %`."""
    return f"{share * 100:.0f} %"


def judge(
    last_received: datetime | None,
    now: datetime,
    *,
    silent_after: timedelta,
    degraded_below: float = 0.0,
    last_hour: int | None = None,
    usual_per_hour: float | None = None,
) -> Connectivity:
    """The state from the last arrival and, where counted, the last hour against the usual rate."""
    if last_received is None:
        return Connectivity("no data", None)
    if now - last_received >= silent_after:
        return Connectivity("silent", last_received)
    if last_hour is not None and usual_per_hour:
        share = last_hour / usual_per_hour
        if share < degraded_below:
            return Connectivity("degraded", last_received, share)
    return Connectivity("online", last_received)


def of_machine(
    sess: Session, machine_id: int, now: datetime, *, silent_after: timedelta, degraded_below: float
) -> Connectivity:
    """A machine's state: its arrivals in the last hour against the readings it took in the day before."""
    found = of_machines(
        sess, now, silent_after=silent_after, degraded_below=degraded_below, where=(Machine.id == machine_id,)
    )
    return found[machine_id][1]


def of_machines(
    sess: Session, now: datetime, *, silent_after: timedelta, degraded_below: float, where: tuple = ()
) -> dict[int, tuple[int, Connectivity]]:
    """Each machine's customer and state, in one statement (three index range lookups per machine)."""
    hour_ago = now - timedelta(hours=1)
    mine = Telemetry.machine_id == Machine.id
    arrived = Telemetry.received_at
    recent = select(func.count()).where(mine, arrived > hour_ago, arrived <= now).scalar_subquery()
    day_before = (Telemetry.ts > hour_ago - RATE_WINDOW, Telemetry.ts <= hour_ago)
    before = select(func.count()).where(mine, *day_before).scalar_subquery()
    rows = sess.execute(select(Machine.id, Machine.customer_id, last_arrival(), recent, before).where(*where))
    hours = RATE_WINDOW / timedelta(hours=1)
    return {
        machine_id: (
            customer_id,
            judge(
                last,
                now,
                silent_after=silent_after,
                degraded_below=degraded_below,
                last_hour=last_hour,
                usual_per_hour=usual / hours if usual else None,
            ),
        )
        for machine_id, customer_id, last, last_hour, usual in rows
    }


def last_arrival():  # noqa: ANN201 - a SQLAlchemy scalar subquery
    """A correlated subquery: the newest arrival time of `Machine.id` (an index lookup per machine)."""
    return select(func.max(Telemetry.received_at)).where(Telemetry.machine_id == Machine.id).scalar_subquery()
