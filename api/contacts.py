"""Real contacts with customers, as the contact budget and the offer policy's context read them: for one
customer, or for a run of predictions' customers at once (`ContactBook`).

Contacts are offers delivered to the customer (their approval's CRM hand-off delivered: an e-mail copy beside
a webhook is none) and technicians' visits (alerts resolved with a finding), never mere proposals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api import events, offer_ledger
from fleet.tables import Alert, Offer, OutboxMessage

# A visit is an alert a technician resolved, with a finding; the policy resolves "no data" and "low data
# rate" alerts itself, without one, when the data returns: nobody went there.
VISITED = Alert.finding.is_not(None)
BUDGET_DAYS = 7  # the contact budget's window (`offers.contact_limit`)
CONTEXT_DAYS = 30  # the offer policy's `contacts_30d`


@dataclass
class Contacts:
    """A customer's contacts read since some time: the dated ones, and the approved offers whose hand-off
    is pending (about to reach the customer while the offer stays approved)."""

    dated: list[datetime] = field(default_factory=list)
    pending: list[Offer] = field(default_factory=list)

    def times(self, since: datetime, *, pending: bool) -> list[datetime | None]:
        """The contacts after `since`, oldest first; with `pending`, those about to be made too, as None."""
        dated = sorted(at for at in self.dated if at > since)
        # The offer's state now: a pass that withdrew an approved offer took back a contact about to be made.
        return dated + [None] * (sum(o.status == "approved" for o in self.pending) if pending else 0)


def read(sess: Session, customer_ids: Iterable[int], now: datetime, *, days: int) -> dict[int, Contacts]:
    """The customers' contacts in the `days` days before `now`, and the pending ones: two or three queries."""
    ids = sorted(set(customer_ids))
    out = {c: Contacts() for c in ids}
    if not ids:
        return out
    since = now - timedelta(days=days)
    still_approved = select(Offer.id).where(Offer.customer_id.in_(ids), Offer.status == "approved")
    delivered = (OutboxMessage.status == "delivered") & (OutboxMessage.delivered_at > since)
    pending = (OutboxMessage.status == "pending") & OutboxMessage.offer_id.in_(still_approved)
    # One contact per approval event, whatever the number of destinations it goes to.
    rows = sess.execute(
        select(
            OutboxMessage.customer_id,
            func.min(OutboxMessage.delivered_at),
            func.min(OutboxMessage.offer_id),
        )
        .where(
            OutboxMessage.customer_id.in_(ids),
            OutboxMessage.event_type == events.OFFER_APPROVED,
            events.crm_hand_off(),
            delivered | pending,
        )
        .group_by(OutboxMessage.customer_id, OutboxMessage.event_id)
    ).all()
    waiting = [offer_id for _, at, offer_id in rows if at is None]
    offers = {o.id: o for o in sess.scalars(select(Offer).where(Offer.id.in_(waiting)))} if waiting else {}
    for customer_id, at, offer_id in rows:
        if at is None:
            out[customer_id].pending.append(offers[offer_id])
        else:
            out[customer_id].dated.append(at)
    visits = sess.execute(
        select(Alert.customer_id, Alert.resolved_at).where(
            Alert.customer_id.in_(ids), VISITED, Alert.resolved_at > since, Alert.resolved_at <= now
        )
    )
    for customer_id, at in visits:
        out[customer_id].dated.append(at)
    return out


def last_contacts(sess: Session, customer_ids: Iterable[int]) -> dict[int, datetime | None]:
    """When each customer was last contacted for real: an offer delivered or a technician's visit."""
    ids = sorted(set(customer_ids))
    out: dict[int, datetime | None] = dict.fromkeys(ids)
    if not ids:
        return out
    sent = sess.execute(
        select(OutboxMessage.customer_id, func.max(OutboxMessage.delivered_at))
        .where(
            OutboxMessage.customer_id.in_(ids),
            OutboxMessage.event_type == events.OFFER_APPROVED,
            OutboxMessage.status == "delivered",
            events.crm_hand_off(),
        )
        .group_by(OutboxMessage.customer_id)
    )
    visits = sess.execute(
        select(Alert.customer_id, func.max(Alert.resolved_at))
        .where(Alert.customer_id.in_(ids), VISITED)
        .group_by(Alert.customer_id)
    )
    for customer_id, at in [*sent, *visits]:
        if at is not None and (out[customer_id] is None or at > out[customer_id]):
            out[customer_id] = at
    return out


def decided_offers(sess: Session, customer_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """Each customer's decided offers (in the outcome ledger) and how many of them earned revenue."""
    ids = sorted(set(customer_ids))
    out = dict.fromkeys(ids, (0, 0))
    if ids:
        rows = sess.execute(
            select(Offer.customer_id, func.count(), func.count(Offer.revenue))
            .where(Offer.customer_id.in_(ids), Offer.status.in_(offer_ledger.DECIDED))
            .group_by(Offer.customer_id)
        )
        out.update({c: (int(n), int(won)) for c, n, won in rows})
    return out


def contact_times(
    sess: Session, customer_id: int, now: datetime, *, days: int = BUDGET_DAYS, pending: bool = False
) -> list[datetime | None]:
    """When each real contact with the customer in the last `days` days happened, oldest first.

    With `pending`, offers approved but not yet delivered count too (their hand-off still pending, held for
    a gone CRM included, and the offer still approved), as None: they are about to reach the customer.
    """
    return read(sess, [customer_id], now, days=days)[customer_id].times(
        now - timedelta(days=days), pending=pending
    )


def recent_contacts(
    sess: Session, customer_id: int, now: datetime, *, days: int = BUDGET_DAYS, pending: bool = False
) -> int:
    """How many real contacts the customer had in the last `days` days (see `contact_times`)."""
    return len(contact_times(sess, customer_id, now, days=days, pending=pending))


def last_contact(sess: Session, customer_id: int) -> datetime | None:
    """When the customer was last contacted for real: an offer delivered or a technician's visit."""
    return last_contacts(sess, [customer_id])[customer_id]


class ContactBook:
    """The contacts, last contact and decided offers of a run of predictions' customers, read once.

    A run only proposes offers (no contact) and withdraws some; withdrawing an approved offer whose hand-off
    is pending takes back a contact about to be made, which `Contacts.times` sees. Like `OfferBook`, a book
    lives within one run of one transaction.
    """

    def __init__(self, sess: Session, customer_ids: Iterable[int], now: datetime) -> None:
        ids = sorted(set(customer_ids))
        self._now = now
        self._contacts = read(sess, ids, now, days=max(BUDGET_DAYS, CONTEXT_DAYS))
        self._last = last_contacts(sess, ids)
        self._decided = decided_offers(sess, ids)

    def times(
        self, customer_id: int, *, days: int = BUDGET_DAYS, pending: bool = False
    ) -> list[datetime | None]:
        """`contact_times` of the customer at the book's `now`."""
        return self._contacts[customer_id].times(self._now - timedelta(days=days), pending=pending)

    def last(self, customer_id: int) -> datetime | None:
        """`last_contact` of the customer."""
        return self._last[customer_id]

    def decided(self, customer_id: int) -> tuple[int, int]:
        """`decided_offers` of the customer."""
        return self._decided[customer_id]
