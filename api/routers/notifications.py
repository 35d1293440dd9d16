"""Alert notification subscriptions: by customer, site and severity, by e-mail or incoming webhook."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from api.deps import AlertReader, SessionDep
from api.scope import get_visible
from fleet import errors
from fleet.tables import Customer, NotificationSubscription, Site

router = APIRouter(prefix="/notifications/subscriptions", tags=["notifications"])


class SubscriptionIn(BaseModel):
    """What to be told of and where."""

    model_config = ConfigDict(extra="forbid")
    customer_id: int | None = Field(default=None, ge=1)
    site_id: int | None = Field(default=None, ge=1)
    min_severity: Literal["medium", "high", "critical"] = "critical"
    channel: Literal["email", "webhook"]
    address: str = Field(min_length=3, max_length=500)

    @model_validator(mode="after")
    def _address_fits_channel(self) -> SubscriptionIn:
        if self.channel == "email" and "@" not in self.address:
            raise ValueError("an e-mail subscription needs an e-mail address")
        if self.channel == "webhook" and not self.address.startswith(("https://", "http://")):
            raise ValueError("a webhook subscription needs an http(s) URL")
        return self


class SubscriptionOut(SubscriptionIn):
    """A stored subscription."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    user_id: int


@router.get("", response_model=list[SubscriptionOut])
def list_subscriptions(sess: SessionDep, who: AlertReader):
    """The caller's subscriptions (an admin sees everyone's)."""
    query = select(NotificationSubscription).order_by(NotificationSubscription.id)
    if who.role != "admin":
        query = query.where(NotificationSubscription.user_id == who.user_id)
    return sess.scalars(query).all()


@router.post("", response_model=SubscriptionOut, status_code=201)
def subscribe(body: SubscriptionIn, sess: SessionDep, who: AlertReader):
    """Subscribe the caller; a customer or site must be one the caller may see (a customer: its own)."""
    customer_id = body.customer_id
    if body.site_id is not None:
        site = sess.get(Site, body.site_id)
        if site is None or not who.sees(site.customer_id):
            raise errors.NotFound(f"site {body.site_id} not found")
        customer_id = customer_id or site.customer_id
    if customer_id is not None:
        get_visible(sess, Customer, customer_id, who, "customer")
    elif who.customers is not None:
        raise errors.InvalidInput("name a customer_id: you see only some customers")
    sub = NotificationSubscription(user_id=who.user_id, **(body.model_dump() | {"customer_id": customer_id}))
    sess.add(sub)
    sess.flush()
    return sub


@router.delete("/{subscription_id}", status_code=204)
def unsubscribe(subscription_id: int, sess: SessionDep, who: AlertReader) -> None:
    """Delete one of the caller's subscriptions (an admin: anyone's); pending notifications are cancelled."""
    sub = sess.get(NotificationSubscription, subscription_id)
    if sub is None or (who.role != "admin" and sub.user_id != who.user_id):
        raise errors.NotFound(f"subscription {subscription_id} not found")
    sess.delete(sub)
