"""Offer outcomes sent back by the CRM as signed webhooks (Standard Webhooks), applied once per webhook id."""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from api import json_body, offers, schemas
from api.errors import Conflict, Unauthorized, invalid_detail
from fleet import errors
from fleet.tables import CrmOutcome, Offer


class BadSignature(Unauthorized):
    """The delivery is not signed with our secret."""

    code = "bad_signature"


class StaleTimestamp(Unauthorized):
    """The delivery's timestamp is outside the replay window."""

    code = "stale_timestamp"


# Unix seconds as ASCII digits; eleven reach the year 5138, more overflow `datetime`.
UNIX_SECONDS = re.compile(r"[0-9]{1,11}")
MAX_ID = CrmOutcome.__table__.c.webhook_id.type.length
SIGNED = ("webhook-id", "webhook-timestamp", "webhook-signature")


class OutcomeIn(BaseModel):
    """What the CRM says became of an offer: won (with the amount) or lost (with a reason)."""

    model_config = ConfigDict(extra="ignore")
    offer_id: schemas.BodyOfferId
    outcome: Literal["won", "lost"]
    amount: schemas.Amount | None = None
    # The offer's currency, if the CRM says which: an amount in another is refused, not taken as the offer's.
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    reason: str | None = Field(default=None, max_length=2000)
    date: AwareDatetime

    @field_validator("reason")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    @field_validator("date")
    @classmethod
    def _in_utc_range(cls, value: datetime) -> datetime:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is outside the years 1 to 9999 in UTC") from None
        return value


def signature_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-case name; raises `BadSignature` for a Standard Webhooks header given twice."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        name = name.lower()
        if name in SIGNED and name in headers:  # which id was signed, which one applied?
            raise BadSignature(
                f"{name} header given more than once; send one (several signatures go in one "
                "webhook-signature, separated by spaces)"
            )
        headers[name] = value
    return headers


def verify(*, secret: str, body: bytes, headers: dict[str, str], now: datetime, window_s: int) -> str:
    """The webhook id of a correctly signed, fresh delivery; raises `BadSignature` or `StaleTimestamp`."""
    webhook_id, stamp, signatures = (headers.get(k, "") for k in SIGNED)
    if not webhook_id or not UNIX_SECONDS.fullmatch(stamp) or not signatures:
        raise BadSignature(
            "webhook-id, webhook-timestamp (Unix seconds) and webhook-signature headers are required"
        )
    at = datetime.fromtimestamp(int(stamp), UTC)
    expected = Webhook(secret).sign(webhook_id, at, body.decode("utf-8", "replace")).split(",", 1)[1]
    given = [part.split(",", 1)[1] for part in signatures.split() if part.startswith("v1,")]
    if not any(hmac.compare_digest(base64.b64decode(expected), _b64(sig)) for sig in given):
        raise BadSignature("signature does not match")
    # Checked after the signature, so an attacker cannot learn our clock from the answers.
    if abs((now - at).total_seconds()) > window_s:
        raise StaleTimestamp(f"timestamp is more than {window_s} s from now; refusing a possible replay")
    return webhook_id


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        return b""


def _parse(body: bytes) -> OutcomeIn:
    try:
        return OutcomeIn.model_validate(_object(json_body.loads(body)))
    except json_body.BadJson as exc:  # whatever its content type says
        raise errors.InvalidInput(f"body: {exc}") from None
    except ValidationError as exc:
        raise errors.InvalidInput(invalid_detail(exc.errors()[0])) from None


def _object(value: object) -> object:
    if not isinstance(value, dict):
        raise errors.InvalidInput("body: must be a JSON object (an outcome)")
    return value


def apply(
    sess: Session, *, webhook_id: str, body: bytes, now: datetime, window_s: int
) -> tuple[CrmOutcome, bool]:
    """Record the outcome and decide the offer; a webhook id seen before changes nothing (returns False).

    The same id with a different outcome is a conflict: the CRM must not believe it was applied. Its date
    may be ahead of ours, or before the offer was made, by the replay window (the clock difference a
    delivery's timestamp may have).
    """
    if len(webhook_id) > MAX_ID:
        raise errors.InvalidInput(f"webhook-id is longer than {MAX_ID} characters")
    data = _parse(body)
    skew = timedelta(seconds=window_s)
    if data.date > now + skew:
        raise errors.InvalidInput(f"date: {data.date} is in the future (now {now:%Y-%m-%d %H:%M:%S} UTC)")
    # Without a currency, as outcomes were stored before it could be given.
    payload = data.model_dump(mode="json", exclude={"currency"} if data.currency is None else None)
    seen = sess.query(CrmOutcome).filter_by(webhook_id=webhook_id).one_or_none()
    if seen is not None:
        if seen.payload != payload:
            raise Conflict(f"webhook-id {webhook_id} was applied before with a different outcome")
        return seen, False
    offer = sess.get(Offer, data.offer_id)
    if offer is None:
        raise errors.NotFound(f"offer {data.offer_id} not found")
    if data.currency not in (None, offer.currency):
        raise errors.InvalidInput(
            f"currency: {data.currency} is not the currency of offer {offer.id} ({offer.currency})"
        )
    if data.date < offer.created_at - skew:
        made = f"{offer.created_at:%Y-%m-%d %H:%M:%S} UTC"
        raise errors.InvalidInput(f"date: {data.date} is before offer {offer.id} was made ({made})")
    won = data.outcome == "won"
    offers.record_outcome(
        sess,
        offer,
        by=None,
        now=data.date,
        accepted=won,
        revenue=data.amount,  # a win without an amount earned the approved price (record_outcome)
        reason=data.reason,
    )
    row = CrmOutcome(
        webhook_id=webhook_id,
        customer_id=offer.customer_id,
        offer_id=offer.id,
        outcome=data.outcome,
        amount=data.amount,
        reason=data.reason,
        occurred_at=data.date,
        received_at=now,
        payload=payload,
    )
    try:
        with sess.begin_nested():
            sess.add(row)
    except IntegrityError:  # the same webhook id committed by a concurrent delivery
        sess.rollback()
        return sess.query(CrmOutcome).filter_by(webhook_id=webhook_id).one(), False
    return row, True
