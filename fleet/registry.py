"""The fleet register: customers, machines and their data-use grants."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import Connection, Engine, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fleet import audit, contract, errors
from fleet.db import session
from fleet.tables import Customer, DataUseGrant, Machine, Site, utcnow

# service: running the service at all; offers: sales use; product_improvement: pooling the customer's
# telemetry into models that also serve other customers.
PURPOSES = ("service", "offers", "product_improvement")
MachineKey = tuple[str, str]


def add_customer(
    *,
    engine: Engine,
    tenant: str,
    name: str | None = None,
    offers: bool = False,
    product_improvement: bool = False,
    reference: str | None = None,
    by: audit.Actor | None = None,
) -> Customer:
    """Register a customer; it always grants `service`, `offers` and `product_improvement` only when asked.

    `reference` names the customer's declaration (contract clause, letter) in the audit trail.
    """
    if not contract.TENANT_PATTERN.match(tenant):
        raise errors.InvalidInput(f"tenant id {tenant!r} must match {contract.TENANT_PATTERN.pattern}")
    try:
        with session(engine) as sess:
            customer = Customer(tenant=tenant, name=name or tenant)
            sess.add(customer)
            sess.flush()
            wanted = {"service": True, "offers": offers, "product_improvement": product_improvement}
            purposes = [p for p in PURPOSES if wanted[p]]
            for purpose in purposes:
                sess.add(DataUseGrant(customer_id=customer.id, purpose=purpose, granted_by=_name(by)))
            sess.flush()
            after = {"purposes": sorted(purposes)}
            audit.record(
                sess, "customer", customer.id, "customer_added", by, {"reference": reference}, after=after
            )
    except IntegrityError:
        raise errors.AlreadyExists(f"customer {tenant!r} exists already") from None
    return customer


def list_customers(*, engine: Engine) -> list[Customer]:
    """All customers ordered by tenant id."""
    with session(engine) as sess:
        return list(sess.scalars(select(Customer).order_by(Customer.tenant)))


def get_customer(sess, tenant: str) -> Customer:
    """The customer with this tenant id, or CustomerNotFound."""
    customer = sess.scalar(select(Customer).where(Customer.tenant == tenant))
    if customer is None:
        raise errors.CustomerNotFound(f"no customer {tenant!r}")
    return customer


def add_machine(
    *,
    engine: Engine,
    tenant: str,
    code: str,
    machine_type: str = "unknown",
    serial: str | None = None,
    installed: date | None = None,
    contract_tier: str = "basic",
    site: str | None = None,
) -> Machine:
    """Register a machine of an existing customer."""
    if not contract.MACHINE_PATTERN.match(code):
        raise errors.InvalidInput(f"machine id {code!r} must match {contract.MACHINE_PATTERN.pattern}")
    try:
        with session(engine) as sess:
            customer = get_customer(sess, tenant)
            site_id = _site_id(sess, customer.id, site) if site else None
            machine = Machine(
                customer_id=customer.id,
                site_id=site_id,
                code=code,
                machine_type=machine_type,
                serial=serial,
                installed=installed,
                contract_tier=contract_tier,
            )
            sess.add(machine)
    except IntegrityError:
        raise errors.AlreadyExists(f"machine {tenant}/{code} exists already") from None
    return machine


def _site_id(sess, customer_id: int, name: str) -> int:
    site = sess.scalar(select(Site).where(Site.customer_id == customer_id, Site.name == name))
    if site is None:
        site = Site(customer_id=customer_id, name=name)
        sess.add(site)
        sess.flush()
    return site.id


def list_machines(*, engine: Engine, tenant: str | None = None) -> list[tuple[str, Machine]]:
    """Machines with their tenant id, optionally of one customer."""
    query = select(Customer.tenant, Machine).join(Customer, Machine.customer_id == Customer.id)
    if tenant:
        query = query.where(Customer.tenant == tenant)
    with session(engine) as sess:
        return [(row[0], row[1]) for row in sess.execute(query.order_by(Customer.tenant, Machine.code))]


def lookup_machines(conn: Connection, keys: Iterable[MachineKey]) -> dict[MachineKey, tuple[int, int]]:
    """Database ids `(customer_id, machine_id)` of the known machines among `keys`."""
    keys = list(keys)
    if not keys:
        return {}
    query = (
        select(Customer.tenant, Machine.code, Customer.id, Machine.id)
        .join(Customer, Machine.customer_id == Customer.id)
        .where(tuple_(Customer.tenant, Machine.code).in_(keys))
    )
    return {(t, c): (cid, mid) for t, c, cid, mid in conn.execute(query)}


def known_tenants(conn: Connection, tenants: Iterable[str]) -> set[str]:
    """Which of these tenant ids are registered customers."""
    return set(conn.scalars(select(Customer.tenant).where(Customer.tenant.in_(list(tenants)))))


def auto_register(engine: Engine, keys: Iterable[MachineKey]) -> None:
    """Register unseen customers and machines on first sight (the demo's default)."""
    with session(engine) as sess:
        for tenant, code in sorted(set(keys)):
            customer = sess.scalar(select(Customer).where(Customer.tenant == tenant))
            if customer is None:
                customer = Customer(tenant=tenant, name=tenant, auto_registered=True)
                sess.add(customer)
                sess.flush()
                # Nobody declared it: assumed so that a demo device's data is kept, and shown as such.
                sess.add(
                    DataUseGrant(
                        customer_id=customer.id, purpose="service", granted_by="auto-register", assumed=True
                    )
                )
            exists = sess.scalar(
                select(Machine.id).where(Machine.customer_id == customer.id, Machine.code == code)
            )
            if exists is None:
                sess.add(Machine(customer_id=customer.id, code=code, auto_registered=True))


def _name(by: audit.Actor | None) -> str:
    return by.name if by is not None else "system"


def grant(
    *, engine: Engine, tenant: str, purpose: str, by: audit.Actor | str, reference: str | None = None
) -> None:
    """Grant a data-use purpose to a customer (idempotent)."""
    with session(engine) as sess:
        grant_purpose(sess, get_customer(sess, tenant).id, purpose, audit.as_actor(by), reference=reference)


def grant_purpose(
    sess: Session, customer_id: int, purpose: str, by: audit.Actor, *, reference: str | None = None
) -> None:
    """Grant a purpose inside the caller's transaction (idempotent); a change is audited with `reference`."""
    if purpose not in PURPOSES:
        raise errors.InvalidInput(f"purpose must be one of {', '.join(PURPOSES)}")
    declared = purposes_of(sess, customer_id) - assumed_by_customer(sess, [customer_id])[customer_id]
    if purpose in declared:
        return
    before = purposes_of(sess, customer_id)
    _end_grants(sess, customer_id, purpose)  # a declared grant replaces an assumed one
    sess.add(DataUseGrant(customer_id=customer_id, purpose=purpose, granted_by=by.name))
    sess.flush()
    _audit_consent(sess, customer_id, "consent_granted", purpose, by, reference, before)


def revoke(
    *, engine: Engine, tenant: str, purpose: str, by: audit.Actor | str, reference: str | None = None
) -> None:
    """Revoke a data-use purpose; the grant row stays as history."""
    with session(engine) as sess:
        revoke_purpose(sess, get_customer(sess, tenant).id, purpose, audit.as_actor(by), reference=reference)


def revoke_purpose(
    sess: Session, customer_id: int, purpose: str, by: audit.Actor | None, *, reference: str | None = None
) -> None:
    """Revoke a purpose inside the caller's transaction; a change is audited with `reference`."""
    before = purposes_of(sess, customer_id)
    if purpose in before:
        _end_grants(sess, customer_id, purpose)
        _audit_consent(sess, customer_id, "consent_revoked", purpose, by, reference, before)


def _audit_consent(
    sess: Session,
    customer_id: int,
    action: str,
    purpose: str,
    by: audit.Actor | None,
    reference: str | None,
    before: set[str],
) -> None:
    audit.record(
        sess,
        "customer",
        customer_id,
        action,
        by,
        {"purpose": purpose, "reference": reference},
        before={"purposes": sorted(before)},
        after={"purposes": sorted(purposes_of(sess, customer_id))},
    )


def _end_grants(sess: Session, customer_id: int, purpose: str) -> None:
    for row in sess.scalars(
        select(DataUseGrant).where(
            DataUseGrant.customer_id == customer_id,
            DataUseGrant.purpose == purpose,
            DataUseGrant.revoked_at.is_(None),
        )
    ):
        row.revoked_at = utcnow()
    sess.flush()


def active_purposes(*, engine: Engine, tenant: str) -> set[str]:
    """The purposes a customer currently allows."""
    with session(engine) as sess:
        return purposes_of(sess, get_customer(sess, tenant).id)


def purposes_of(sess: Session, customer_id: int) -> set[str]:
    """The purposes a customer currently allows, inside the caller's transaction."""
    return purposes_by_customer(sess, [customer_id])[customer_id]


def customers_granting(conn: Connection | Session, purpose: str) -> set[int]:
    """Ids of the customers that currently allow `purpose`."""
    query = select(DataUseGrant.customer_id).where(
        DataUseGrant.purpose == purpose, DataUseGrant.revoked_at.is_(None)
    )
    return set(conn.scalars(query))


def purposes_by_customer(sess: Session, customer_ids: Iterable[int]) -> dict[int, set[str]]:
    """The purposes each of these customers currently allows, in one query."""
    ids = sorted(set(customer_ids))
    found: dict[int, set[str]] = {cid: set() for cid in ids}
    if not ids:
        return found
    query = select(DataUseGrant.customer_id, DataUseGrant.purpose).where(
        DataUseGrant.customer_id.in_(ids), DataUseGrant.revoked_at.is_(None)
    )
    for customer_id, purpose in sess.execute(query):
        found[customer_id].add(purpose)
    return found


def assumed_by_customer(sess: Session, customer_ids: Iterable[int]) -> dict[int, set[str]]:
    """The active purposes of each customer that auto-registration assumed and nobody declared."""
    ids = sorted(set(customer_ids))
    found: dict[int, set[str]] = {cid: set() for cid in ids}
    if not ids:
        return found
    query = select(DataUseGrant.customer_id, DataUseGrant.purpose).where(
        DataUseGrant.customer_id.in_(ids), DataUseGrant.revoked_at.is_(None), DataUseGrant.assumed.is_(True)
    )
    for customer_id, purpose in sess.execute(query):
        found[customer_id].add(purpose)
    return found
