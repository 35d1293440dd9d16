"""What the policy reads of a run of predictions' machines once, not once per prediction: their open offers,
the machines and their customers."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.tables import Customer, Machine, Offer

OPEN = ("proposed", "approved", "sent")


class OfferBook:
    """The open offers of the machines a session applies predictions to, read once, and those proposed since.

    The read locks them (PostgreSQL; SQLite's writer holds the database): an approval or a CRM outcome
    waits for the run's commit instead of being overwritten by a withdrawal decided on what was read
    before it. Like `alerts.AlertBook`, a book lives within one run of one transaction.
    """

    def __init__(self, sess: Session, machine_ids: Iterable[int]) -> None:
        self._sess = sess
        self._open: dict[int, list[Offer]] = {m: [] for m in sorted(set(machine_ids))}
        self._owners: list[Machine | Customer] = []  # held: the session's identity map keeps weak references
        if self._open:
            query = (
                select(Offer)
                .where(Offer.machine_id.in_(list(self._open)), Offer.status.in_(OPEN))
                .order_by(Offer.id)
                .with_for_update()
            )
            for offer in sess.scalars(query):
                self._open[offer.machine_id].append(offer)

    def open_offers(self, machine_id: int, states: tuple[str, ...] = OPEN) -> list[Offer]:
        """The machine's offers now in one of `states`, oldest first."""
        return [offer for offer in self._open[machine_id] if offer.status in states]

    def add(self, offer: Offer) -> None:
        """An offer proposed in this run."""
        self._open[offer.machine_id].append(offer)

    def read_owners(self, machine_ids: Iterable[int]) -> None:
        """Load these machines and their customers into the session, in one query each (`sess.get` then
        finds them without one); consent is read at each proposal, as it may be revoked meanwhile."""
        ids = sorted(set(machine_ids))
        if ids:
            machines = self._sess.scalars(select(Machine).where(Machine.id.in_(ids))).all()
            owners = sorted({m.customer_id for m in machines})
            self._owners += [*machines, *self._sess.scalars(select(Customer).where(Customer.id.in_(owners)))]
