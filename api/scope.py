"""Tenancy: every lookup and list goes through the caller's scope, so foreign objects do not exist."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import Select, bindparam
from sqlalchemy.orm import Session

from api.auth import Principal
from fleet import errors
from fleet.tables import Customer

T = TypeVar("T")


def restrict(query: Select, column, principal: Principal) -> Select:
    """Limit a query to the customers the caller may see."""
    if principal.customers is None:
        return query
    return query.where(column.in_(sorted(principal.customers)))


def restrict_bound(query: Select, column) -> Select:
    """Limit a query to the customer ids bound as `customers`: one statement serves every caller."""
    return query.where(column.in_(bindparam("customers", expanding=True)))


def bound_customers(principal: Principal) -> list[int] | None:
    """The `customers` parameter of `restrict_bound` for this caller; None if it sees everyone."""
    return None if principal.customers is None else sorted(principal.customers)


def get_visible(sess: Session, model: type[T], object_id: int, principal: Principal, what: str) -> T:
    """The object if it exists for this caller; otherwise 404, whether it is missing or foreign."""
    obj = sess.get(model, object_id)
    owner = None if obj is None else obj.id if isinstance(obj, Customer) else obj.customer_id
    require_visible(owner, principal, what, object_id)
    return obj


def require_visible(owner: int | None, principal: Principal, what: str, object_id: int) -> None:
    """404 unless the object exists (its owning customer is known) and the caller sees that customer."""
    if owner is None or not principal.sees(owner):
        raise errors.NotFound(f"{what} {object_id} not found")
