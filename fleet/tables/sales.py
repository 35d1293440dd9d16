"""The sales loop's own rows: CRM outcomes received by webhook, and technicians' alert subscriptions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, event, func, inspect
from sqlalchemy.orm import Mapped, mapped_column

from fleet.tables.base import Base, BigId, Json, UtcDateTime, utcnow


class CrmOutcome(Base):
    """An offer outcome the CRM sent by signed webhook; the unique `webhook_id` makes a replay a no-op."""

    __tablename__ = "crm_outcomes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(128), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"))
    outcome: Mapped[str] = mapped_column(String(16))
    amount: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    payload: Mapped[dict] = mapped_column(Json, default=dict)


class NotificationSubscription(Base):
    """A person who wants to hear of alerts: by customer and/or site, from a severity up, on one channel."""

    __tablename__ = "notification_subscriptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    min_severity: Mapped[str] = mapped_column(String(16), default="critical")
    channel: Mapped[str] = mapped_column(String(16))  # email | webhook
    address: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Set when the endpoint said it is gone (HTTP 410): nothing is sent to it from then on.
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))


def subscription_address(channel: str, address: str) -> str:
    """A subscription's address as it is stored and compared: an e-mail address in lower case (Python's, so
    SQLite and PostgreSQL agree: SQL lower() folds ASCII only on SQLite), a webhook URL as it is."""
    return address.lower() if channel == "email" else address


@event.listens_for(NotificationSubscription, "before_insert")
@event.listens_for(NotificationSubscription, "before_update")
def _stored_address(_mapper, _conn, sub: NotificationSubscription) -> None:
    """Every address written through the ORM is stored as `subscription_address` gives it; an update that
    leaves address and channel alone leaves the address as stored (one migration 0035 could not lower within
    the column: lowering it again would make the row's every update, an unsubscribe, too long to store)."""
    state = inspect(sub)
    changed = state.attrs.address.history.has_changes() or state.attrs.channel.history.has_changes()
    if state.has_identity and not changed:
        return
    sub.address = subscription_address(sub.channel, sub.address)


# One subscription in force per person, channel, address, scope and severity, however many requests send it
# at once (migrations 0033, 0035); no customer or site is 0, as NULLs are never equal in a unique index.
Index(
    "uq_notification_subscriptions_in_force",
    NotificationSubscription.user_id,
    NotificationSubscription.channel,
    NotificationSubscription.address,
    func.coalesce(NotificationSubscription.customer_id, 0),
    func.coalesce(NotificationSubscription.site_id, 0),
    NotificationSubscription.min_severity,
    unique=True,
    sqlite_where=NotificationSubscription.disabled_at.is_(None),
    postgresql_where=NotificationSubscription.disabled_at.is_(None),
)


class CatalogVersion(Base):
    """A catalog (YAML, checked like api/catalog.yaml) added in the console or API; the one activated last
    is in force. The text is never changed: a changed catalog is a new version."""

    __tablename__ = "catalog_versions"
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(Text)
    added_by: Mapped[str | None] = mapped_column(String(200))
    added_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
