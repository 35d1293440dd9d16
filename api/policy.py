"""The policy runner: turns new predictions into alerts and offers, and escalates overdue alerts."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from api import (
    alerts,
    catalog,
    catalog_versions,
    contacts,
    notifications,
    offer_ledger,
    offer_lifecycle,
    offer_policy,
    offers,
    silence,
)
from api.offer_book import OfferBook
from fleet import display, machine_types, watermarks
from fleet.db import for_writing, give_way, session
from fleet.settings import Settings
from fleet.tables import Prediction, Watermark, utcnow
from models import versions

log = logging.getLogger(__name__)
WATERMARK = "policy.predictions"
# Predictions a transaction applies: SQLite's writer lock is held meanwhile (measured in docs/benchmarks.md).
BATCH = 500
# At most this many of them at risk: each is an alert and a proposal's reads and writes (~15 ms under load),
# so a batch mostly at risk (a new model, a fleet-wide fault) holds the lock no longer than 50 did before.
AT_RISK = 50


@dataclass
class PolicyReport:
    """What one pass did."""

    predictions: int = 0
    alerts_opened_or_updated: int = 0
    offers_proposed: int = 0
    offers_withdrawn: int = 0
    offers_expired: int = 0
    escalated: int = 0
    notifications: int = 0
    no_data_opened: int = 0
    no_data_resolved: int = 0
    low_rate_opened: int = 0
    low_rate_resolved: int = 0

    def summary(self) -> str:
        """One line for logs and `servicecast policy --once`."""
        n = display.count
        return (
            f"{n(self.predictions, 'prediction')}: {n(self.alerts_opened_or_updated, 'alert')} opened or "
            f"updated, {n(self.offers_proposed, 'offer')} proposed, {self.offers_withdrawn} withdrawn, "
            f"{self.offers_expired} expired, {n(self.escalated, 'alert')} escalated, "
            f"{n(self.notifications, 'notification')} queued, {n(self.no_data_opened, 'no-data alert')} "
            f"opened, {self.no_data_resolved} resolved, {n(self.low_rate_opened, 'low-data-rate alert')} "
            f"opened, {self.low_rate_resolved} resolved"
        )


def run_once(
    *,
    engine: Engine,
    settings: Settings,
    now: datetime | None = None,
    batch: int = BATCH,
    rng: np.random.Generator | None = None,
) -> PolicyReport:
    """Process predictions past the watermark in one transaction per batch; safe to repeat after a crash.

    Each batch holds SQLite's write lock from its first read to its commit, and other writers (ingest)
    wait meanwhile: batches are small (500 predictions held it 0.1–0.4 s with 3 % at risk, 0.4–1.2 s under
    load), and other writers get their turn between them. The offer chooser is trained before, not under it.
    """
    report = PolicyReport()
    # Each pass reads, then writes: on SQLite it must hold the write lock from BEGIN (see `for_writing`).
    writer = for_writing(engine)
    now = now or utcnow()
    rng = rng or np.random.default_rng()
    chooser = _Chooser(settings)
    with session(engine) as read:  # trained before a batch takes SQLite's write lock, not while it holds it
        mark = read.get(Watermark, WATERMARK)
        if read.scalar(select(Prediction.id).where(Prediction.id > (mark.value if mark else 0)).limit(1)):
            chooser.get(read)
    while True:
        with session(writer) as sess:
            mark = watermarks.locked(sess, WATERMARK)
            new = sess.scalars(
                select(Prediction).where(Prediction.id > mark.value).order_by(Prediction.id).limit(batch)
            ).all()
            done = new
            if new:
                done = _apply(sess, new, now=now, settings=settings, chooser=chooser, rng=rng, report=report)
                mark.value, mark.updated_at = done[-1].id, now
            report.predictions += len(done)
        if len(done) == len(new) < batch:
            break
        give_way(engine)
    with _sweeping(writer) as sess:
        withdrawn, report.offers_expired = offer_lifecycle.sweep(sess, now=now, settings=settings)
        report.offers_withdrawn += withdrawn
    with _sweeping(writer) as sess:
        quiet = timedelta(minutes=settings.machine_silent_after_min)
        report.no_data_opened, report.no_data_resolved = silence.sweep(sess, now=now, silent_after=quiet)
    with session(writer) as sess:  # takes turns on its own mark (`silence.RATE_MARK`)
        below = settings.machine_degraded_below
        rates = silence.sweep_rates(sess, now=now, silent_after=quiet, degraded_below=below)
        report.low_rate_opened, report.low_rate_resolved = rates
    with _sweeping(writer) as sess:
        after = timedelta(minutes=settings.alert_escalate_after_min)
        report.escalated = len(alerts.escalate_overdue(sess, now=now, after=after))
    with session(writer) as sess:  # takes turns on its own mark (`notifications.WATERMARK`)
        report.notifications = notifications.enqueue_due(sess, now=now, public_url=settings.public_url)
    return report


@contextmanager
def _sweeping(writer: Engine) -> Iterator[Session]:
    """A sweep's transaction under the batches' lock (the watermark row, which the first batch wrote): two
    passes at once (a worker and a manual `servicecast policy`) sweep in turn, the second reading what the
    first committed, not what it read before that commit (PostgreSQL; SQLite's write lock already does it)."""
    with session(writer) as sess:
        watermarks.locked(sess, WATERMARK)
        yield sess


def _apply(
    sess: Session,
    predictions: Sequence[Prediction],
    *,
    now: datetime,
    settings: Settings,
    chooser: _Chooser,
    rng: np.random.Generator,
    report: PolicyReport,
) -> Sequence[Prediction]:
    """A batch's predictions in id order, up to its `AT_RISK`-th at risk; returns those it applied. Their
    machines' alerts and open offers, the at-risk ones' customers' contacts and the machine types' sensors are
    read once for all; each proposal reads its customer's consent afresh."""
    trained = versions.thresholds(sess, {p.model_version for p in predictions if p.model_version})
    thresholds = [_threshold(trained, p.model_version) for p in predictions]
    flags = [alerts.alerting(p, t) for p, t in zip(predictions, thresholds, strict=True)]
    end = next((i + 1 for i, n in enumerate(itertools.accumulate(flags)) if n == AT_RISK), len(flags))
    predictions, thresholds = predictions[:end], thresholds[:end]
    at_risk = [p for p, flag in zip(predictions, flags[:end], strict=True) if flag]
    risky = {p.machine_id for p in at_risk}
    alert_book, offer_book = alerts.AlertBook(sess), OfferBook(sess, [p.machine_id for p in predictions])
    alert_book.read(risky)
    offer_book.read_owners(risky)
    contact_book = contacts.ContactBook(sess, {p.customer_id for p in at_risk}, now)
    specs_of = machine_types.specs_by_type(sess)
    policy = chooser.get(sess) if risky else None
    for prediction, threshold in zip(predictions, thresholds, strict=True):
        alert = alert_book.apply(prediction, now, threshold=threshold)
        report.alerts_opened_or_updated += alert is not None
        report.offers_withdrawn += offer_lifecycle.follow_prediction(
            sess, prediction, threshold=threshold, now=now, settings=settings, book=offer_book
        )
        offers.follow_estimate(sess, prediction, now, book=offer_book, specs_of=specs_of)
        # Only on an alert: below the threshold `follow_prediction` withdraws it on the next pass.
        if alert is not None:
            offer = offers.propose(
                sess,
                prediction,
                settings,
                now,
                alert,
                policy=policy,
                rng=rng,
                book=offer_book,
                contact_book=contact_book,
                in_force=chooser.in_force,
                alert_book=alert_book,
                specs_of=specs_of,
            )
            report.offers_proposed += offer is not None
    return predictions


def alert_threshold(sess: Session, version: str | None) -> float:
    """The risk at which the policy opens an alert for a prediction scored by `version`."""
    return _threshold(versions.thresholds(sess, [version] if version else []), version)


def _threshold(trained: Mapping[str, float], version: str | None) -> float:
    """The version's trained operating threshold, else ALERT_MIN_RISK (no version, or none stored)."""
    return trained.get(version or "", alerts.ALERT_MIN_RISK)


def _offer_policy(sess, settings: Settings, cat: catalog.Catalog | None = None) -> offer_policy.OfferPolicy:
    """The configured offer policy of the catalog in force (`cat`, else read now), trained on the outcome
    ledger as it stands."""
    cat = cat or catalog_versions.in_force(sess)
    chosen = cat.policy
    rows = offer_ledger.from_offers(sess).rows() if chosen.name != "first_fit" else ()
    return offer_policy.build(
        chosen.name,
        exploration=chosen.exploration,
        temperature=chosen.temperature,
        optimism=chosen.optimism,
        rows=rows,
        items=[item.key for item in cat.items],
    )


@dataclass
class _Chooser:
    """A pass's offer policy: trained on the ledger once, and again only if another catalog came in force.

    The ledger holds decided offers; a pass only proposes and withdraws, so it cannot add to it (its
    expiry sweep runs after its predictions). An outcome another process records meanwhile is learned by
    the next pass, seconds later, as one recorded while a batch ran always was.
    """

    settings: Settings
    policy: offer_policy.OfferPolicy | None = None
    in_force: catalog.Catalog | None = None  # the catalog in force at the last `get`: the policy's

    def get(self, sess: Session) -> offer_policy.OfferPolicy:
        """The policy for the catalog in force."""
        cat = catalog_versions.in_force(sess)
        if self.policy is None or self.in_force is None or cat.version != self.in_force.version:
            self.policy = _offer_policy(sess, self.settings, cat)
        self.in_force = cat
        return self.policy


def run_forever(*, engine: Engine, settings: Settings, stop: threading.Event, every_s: float = 2.0) -> None:
    """Run passes until `stop` is set; a failing pass is logged and retried, never fatal."""
    log.info("policy started")
    while not stop.is_set():
        try:
            report = run_once(engine=engine, settings=settings)
            moved = report.offers_withdrawn or report.offers_expired or report.no_data_opened
            rates = report.low_rate_opened or report.low_rate_resolved
            if report.predictions or report.escalated or moved or report.no_data_resolved or rates:
                log.info("policy pass: %s", report.summary())
        except Exception:
            log.exception("policy pass failed; retrying")
        stop.wait(every_s)
    log.info("policy stopped")
