"""Alert notification subscriptions: by customer, site and severity, by e-mail or incoming webhook."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from api.deps import AlertReader, SessionDep
from api.errors import Forbidden
from api.schemas import INT32_MAX
from api.scope import get_visible
from fleet import errors
from fleet.tables import Customer, NotificationSubscription, Site

router = APIRouter(prefix="/notifications/subscriptions", tags=["notifications"])


class _Scope(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: int | None = Field(default=None, ge=1, le=INT32_MAX)
    site_id: int | None = Field(default=None, ge=1, le=INT32_MAX)
    min_severity: Literal["medium", "high", "critical"] = "critical"


class EmailSubscriptionIn(_Scope):
    """Be told by e-mail."""

    channel: Literal["email"]
    address: str = Field(pattern=r"^[^@ \t\r\n]+@[^@ \t\r\n]+$", max_length=320)


class WebhookSubscriptionIn(_Scope):
    """Be told through a Teams/Slack-style incoming webhook."""

    channel: Literal["webhook"]
    address: str = Field(pattern=r"^https?://[^ \t\r\n]+$", max_length=500)


SubscriptionIn = Annotated[EmailSubscriptionIn | WebhookSubscriptionIn, Field(discriminator="channel")]


class SubscriptionOut(BaseModel):
    """A stored subscription."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    user_id: int
    customer_id: int | None
    site_id: int | None
    min_severity: str
    channel: str
    address: str


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
        raise Forbidden("name a customer_id: you see only some customers")
    sub = NotificationSubscription(user_id=who.user_id, **(body.model_dump() | {"customer_id": customer_id}))
    sess.add(sub)
    sess.flush()
    return sub


@router.delete("/{subscription_id}", status_code=204)
def unsubscribe(
    subscription_id: Annotated[int, PathParam(ge=1, le=INT32_MAX)], sess: SessionDep, who: AlertReader
) -> None:
    """Delete one of the caller's subscriptions (an admin: anyone's); pending notifications are cancelled."""
    sub = sess.get(NotificationSubscription, subscription_id)
    if sub is None or (who.role != "admin" and sub.user_id != who.user_id):
        raise errors.NotFound(f"subscription {subscription_id} not found")
    sess.delete(sub)
