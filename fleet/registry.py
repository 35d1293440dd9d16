"""The fleet register: customers, machines and their data-use grants."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import Connection, Engine, Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fleet import audit, display, errors, registration, type_checks
from fleet.db import for_writing, session
from fleet.registration import MachineKey
from fleet.tables import Customer, DataUseGrant, Machine, utcnow
from fleet.tables.register import PURPOSES


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
    registration.check_key(tenant)  # the words every import gives a bad tenant id
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
    site_timezone: str | None = None,
) -> Machine:
    """Register a machine of an existing customer; `site_timezone` (IANA name) sets its site's zone."""
    registration.check_key(tenant, code)
    if problem := type_checks.name_problem(machine_type):
        raise errors.InvalidInput(f"machine type {problem}: no types file can define it")
    with session(engine) as sess:
        customer = get_customer(sess, tenant)
        if sess.scalar(select(Machine.id).where(Machine.customer_id == customer.id, Machine.code == code)):
            raise errors.AlreadyExists(f"machine {tenant}/{code} exists already")
    spec = {
        "tenant": tenant,
        "machine": code,
        "machine_type": machine_type,
        "serial": serial,
        "installed": installed,
        "contract_tier": contract_tier,
        "site": site,
        "site_timezone": site_timezone,
    }
    ids = registration.register_machines(engine=engine, machines=[spec])
    with session(engine) as sess:
        return sess.get_one(Machine, ids[(tenant, code)][1])


def list_machines(*, engine: Engine, tenant: str | None = None) -> list[tuple[str, Machine]]:
    """Machines with their tenant id, optionally of one customer (CustomerNotFound if there is none)."""
    query = select(Customer.tenant, Machine).join(Customer, Machine.customer_id == Customer.id)
    if tenant:
        query = query.where(Customer.tenant == tenant)
    with session(engine) as sess:
        if tenant and not known_tenants(sess.connection(), [tenant]):
            raise errors.CustomerNotFound(f"no customer {tenant!r}")
        return [(row[0], row[1]) for row in sess.execute(query.order_by(Customer.tenant, Machine.code))]


def known_tenants(conn: Connection, tenants: Iterable[str]) -> set[str]:
    """Which of these tenant ids are registered customers."""
    return set(conn.scalars(select(Customer.tenant).where(Customer.tenant.in_(list(tenants)))))


def auto_register(engine: Engine, keys: Iterable[MachineKey]) -> None:
    """Register unseen customers and machines on first sight (the demo's default).

    Nobody declared the new customers' `service` grant: it is assumed so that a demo device's data is kept,
    and shown as such.
    """
    machines = [{"tenant": tenant, "machine": code} for tenant, code in sorted(set(keys))]
    registration.register_machines(
        engine=engine, machines=machines, granted_by="auto-register", first_sight=True
    )


def _name(by: audit.Actor | None) -> str:
    return by.name if by is not None else display.SYSTEM_ACTOR


def grant(
    *, engine: Engine, tenant: str, purpose: str, by: audit.Actor | str, reference: str | None = None
) -> None:
    """Grant a data-use purpose to a customer (idempotent)."""
    with session(for_writing(engine)) as sess:
        customer_id = get_customer(sess, tenant).id
        grant_purpose(
            sess, customer_id=customer_id, purpose=purpose, by=audit.as_actor(by), reference=reference
        )


def grant_purpose(
    sess: Session, *, customer_id: int, purpose: str, by: audit.Actor, reference: str | None = None
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
    with session(for_writing(engine)) as sess:
        customer_id = get_customer(sess, tenant).id
        revoke_purpose(
            sess, customer_id=customer_id, purpose=purpose, by=audit.as_actor(by), reference=reference
        )


def revoke_purpose(
    sess: Session, *, customer_id: int, purpose: str, by: audit.Actor | None, reference: str | None = None
) -> None:
    """Revoke a purpose inside the caller's transaction; a change is audited with `reference`."""
    if purpose not in PURPOSES:
        raise errors.InvalidInput(f"purpose must be one of {', '.join(PURPOSES)}")
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
    return set(conn.scalars(granting(purpose)))


def granting(purpose: str) -> Select:
    """The query of the ids of the customers that currently allow `purpose` (for use in another query)."""
    return select(DataUseGrant.customer_id).where(
        DataUseGrant.purpose == purpose, DataUseGrant.revoked_at.is_(None)
    )


def granted_since(sess: Session, purpose: str) -> dict[int, datetime]:
    """Since when each customer that currently allows `purpose` has allowed it without a break."""
    query = (
        select(DataUseGrant.customer_id, func.min(DataUseGrant.granted_at))
        .where(DataUseGrant.purpose == purpose, DataUseGrant.revoked_at.is_(None))
        .group_by(DataUseGrant.customer_id)
    )
    return {customer_id: since for customer_id, since in sess.execute(query)}


def purposes_by_customer(
    sess: Session, customer_ids: Iterable[int], *, assumed_only: bool = False
) -> dict[int, set[str]]:
    """The purposes each of these customers currently allows (or only the assumed ones), in one query."""
    ids = sorted(set(customer_ids))
    found: dict[int, set[str]] = {cid: set() for cid in ids}
    if not ids:
        return found
    query = select(DataUseGrant.customer_id, DataUseGrant.purpose).where(
        DataUseGrant.customer_id.in_(ids), DataUseGrant.revoked_at.is_(None)
    )
    if assumed_only:
        query = query.where(DataUseGrant.assumed.is_(True))
    for customer_id, purpose in sess.execute(query):
        found[customer_id].add(purpose)
    return found


def assumed_by_customer(sess: Session, customer_ids: Iterable[int]) -> dict[int, set[str]]:
    """The active purposes of each customer that auto-registration assumed and nobody declared."""
    return purposes_by_customer(sess, customer_ids, assumed_only=True)
