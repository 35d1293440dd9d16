"""The demo's sales side by the hour it starts: alerts, offers on them per account, and why not more.

`python -m benchmarks.demo_offers [--day 2026-12-06] [--hours 0,6,12,18]` runs the demo chain
(`servicecast.demo.run_demo`, not serving) once per start hour of one day, each on a new SQLite database in a
temporary folder, with the demo's sizes (SERVICECAST_DEMO_*, the defaults unless set), and prints a line
per hour: its alerts from predictions (critical, assigned to demo-tech), the offers still proposed on them
per account, and for every alert without one the first gate that stays shut (as `api.offers.propose`
checks them: the newest prediction under the alert threshold, catalog eligibility, consent, "service
first", the contact limit, a live duplicate).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import catalog, catalog_versions, connectivity, offers, policy
from api.alerts import lead_time_hours
from fleet.db import make_engine, session
from fleet.settings import Settings
from fleet.tables import Alert, Customer, Machine, Offer, Prediction
from servicecast import demo_database
from servicecast.demo import run_demo
from servicecast.demo_fleet import CUSTOMERS

DATA_ALERTS = (
    connectivity.NO_DATA,
    connectivity.LOW_DATA_RATE,
)  # the policy's own alerts on missing data, not predictions


@dataclass
class DemoSales:
    """What one demo run left for field service and the account manager."""

    alerts: int = 0
    critical: int = 0
    assigned: int = 0
    offers: Counter = field(default_factory=Counter)  # tenant -> offers still proposed on its alerts
    machines_offered: set[int] = field(default_factory=set)  # machines with such an offer
    why_not: Counter = field(default_factory=Counter)  # first shut gate -> alerts without such an offer
    ready_s: int | None = None  # the demo's own "ready in"

    def granting_accounts_offered(self) -> set[str]:
        """The accounts that grant `offers` with at least one offer on an alert."""
        granting = {tenant for tenant, _, grants, _ in CUSTOMERS if grants}
        return {tenant for tenant, n in self.offers.items() if n and tenant in granting}


def run_hour(now: datetime, folder: Path) -> DemoSales:
    """The demo chain as `servicecast demo --no-serve` runs it, started at `now`, in `folder`."""
    settings = Settings(database_url=f"sqlite:///{folder / 'demo.db'}")
    engine, _ = demo_database.opened(settings)
    output = io.StringIO()
    here = Path.cwd()
    os.chdir(folder)  # the demo writes its keys file under ./var
    try:
        with contextlib.redirect_stdout(output):
            code = run_demo(settings, engine, fresh=True, serve=False, now=now)
    finally:
        os.chdir(here)
    if code != 0:
        raise RuntimeError(f"the demo at {now:%H:%M} ended with {code}:\n{output.getvalue()[-3000:]}")
    sales = tally(settings, now)
    ready = re.search(r"ready in (\d+) s", output.getvalue())
    sales.ready_s = int(ready.group(1)) if ready else None
    return sales


def tally(settings: Settings, now: datetime) -> DemoSales:
    """Alerts from predictions and the offers proposed on them, each alert without one with its reason."""
    engine = make_engine(settings.database_url)
    sales = DemoSales()
    try:
        with session(engine) as sess:
            tenants = dict(sess.execute(select(Customer.id, Customer.tenant)).all())
            alerts = sess.scalars(select(Alert).where(Alert.failure_mode.not_in(DATA_ALERTS))).all()
            offered = set(
                sess.scalars(
                    select(Offer.alert_id).where(Offer.status == "proposed", Offer.alert_id.is_not(None))
                )
            )
            for alert in alerts:
                sales.alerts += 1
                sales.critical += alert.severity == "critical"
                sales.assigned += alert.status == "assigned"
                if alert.id in offered:
                    sales.offers[tenants[alert.customer_id]] += 1
                    sales.machines_offered.add(alert.machine_id)
                else:
                    sales.why_not[why_no_offer(sess, alert, settings, now)] += 1
    finally:
        engine.dispose()
    return sales


def why_no_offer(sess: Session, alert: Alert, settings: Settings, now: datetime) -> str:
    """The first of `propose`'s gates that is shut for this alert's machine at the end of the demo."""
    newest = sess.scalar(
        select(Prediction)
        .where(Prediction.machine_id == alert.machine_id)
        .order_by(Prediction.id.desc())
        .limit(1)
    )
    if newest.id != alert.last_prediction_id:
        threshold = policy.alert_threshold(sess, newest.model_version)
        if newest.risk is None or newest.risk < threshold:
            return "risk under the threshold at the 2nd scoring"
        return "the 2nd scoring names another mode"
    if newest.status != "ok":
        return f"prediction {newest.status}"
    machine = sess.get(Machine, alert.machine_id)
    fits = catalog.eligible(
        mode=newest.failure_mode or None,
        risk=newest.risk,
        tier=machine.contract_tier,
        lead_hours=lead_time_hours(newest),
        catalog=catalog_versions.in_force(sess),
    )
    if not fits:
        return "catalog: no item fits"
    reason = offers.blocking_reason(sess, newest, fits[0], settings, now)
    return reason.split(":")[0] if reason else "no gate shut (held by the policy?)"


def _hours(text: str) -> list[int]:
    hours = [int(h) for h in text.split(",")]
    if not all(0 <= h < 24 for h in hours):
        raise argparse.ArgumentTypeError("hours are 0 to 23")
    return hours


def _line(hour: int, sales: DemoSales) -> str:
    per_account = " ".join(f"{sales.offers[tenant]:>2}" for tenant, *_ in CUSTOMERS)
    why = ", ".join(f"{n} {reason}" for reason, n in sales.why_not.most_common())
    return (
        f"| {hour:02d}:00 | {sales.alerts} | {sales.critical} | {sales.assigned} | {per_account} | "
        f"{len(sales.machines_offered)} | {len(sales.granting_accounts_offered())} | {why or '-'} | "
        f"{sales.ready_s} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    parser.add_argument("--day", type=date.fromisoformat, default=yesterday, help="default: yesterday (UTC)")
    parser.add_argument("--hours", type=_hours, default=list(range(24)), help="start hours, e.g. 0,6,12,18")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the demo's deliberately bad payloads and its brokers' notices
    accounts = "/".join(tenant for tenant, *_ in CUSTOMERS)
    print(
        f"demo started on {args.day} at each hour below (UTC); sizes from SERVICECAST_DEMO_* or the defaults"
    )
    print(
        f"| start | alerts | critical | assigned | offers on alerts {accounts} | machines offered "
        "| granting accounts offered | alerts without an offer: first shut gate | ready |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    started = time.monotonic()
    for hour in args.hours:
        now = datetime.combine(args.day, datetime.min.time(), UTC) + timedelta(hours=hour)
        with tempfile.TemporaryDirectory(prefix="servicecast-demo-offers-") as folder:
            print(_line(hour, run_hour(now, Path(folder))), flush=True)
    print(f"{len(args.hours)} demo runs in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
