"""Request and response bodies of the API."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Annotated, Any, Literal

import httpx
from fastapi import Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from api import delivery, estimate
from api.number_checks import not_true_or_false
from fleet.tables import subscription_address

Purpose = Literal["service", "offers", "product_improvement"]
INT32_MAX = 2_147_483_647
INT64_MAX = 9_223_372_036_854_775_807
# Money as text: 1850.50, 0.5, 12 (no sign, exponent, separator, space or leading zero); 15 significant digits
# are as many as every float keeps exactly (DBL_DIG).
DECIMAL_TEXT = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")
FLOAT_DIGITS = 15
# The customer's declaration behind a consent change (a contract clause, a letter), kept in the audit trail.
Reference = Annotated[str | None, Query(min_length=1, max_length=200)]


def _money(value: object) -> object:
    """An amount of money as a JSON number or as decimal text (many CRMs send money so, to keep it exact):
    the text is read exactly, as plain digits with at most a fraction, and no more significant digits than a
    float keeps (`float("2100.5000000000000001")` is 2100.5, which has no decimals too many). -0 is 0."""
    if isinstance(value, str):
        if not DECIMAL_TEXT.fullmatch(value):
            raise ValueError('must be a number, or decimal text in plain digits (as "1850.50")')
        exact = Decimal(value)
        if len(exact.normalize().as_tuple().digits) > FLOAT_DIGITS:
            raise ValueError(f"{value} has more than {FLOAT_DIGITS} significant digits")
        return float(exact)
    return not_true_or_false(value) + 0.0 if isinstance(value, float) else not_true_or_false(value)


def _json_integer(value: object) -> object:
    """Take an id only as a JSON integer: pydantic would read true, "1" and 1.0 as 1, and a float past 2**53
    as another id than the one written (9007199254740993.0 is the float 9007199254740992.0)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError('must be a whole number (as 42, not 42.0, true, false or "42")')
    return value


def _plain_digits(value: object) -> object:
    """Read an id or a count of a path or query from plain decimal digits: int() would also read "1.0", " 1",
    "01", "+1", "1_0" and other scripts' digits as a number."""
    if not isinstance(value, str):
        return value
    if not (value.isascii() and value.isdigit()) or (value.startswith("0") and value != "0"):
        raise ValueError('must be a whole number in plain digits (as 42, not 42.0, 042, +42 or " 42")')
    # More digits than INT64_MAX has are past every id's bound; int() would refuse 4,300 and more.
    return int(value) if len(value) <= len(str(INT64_MAX)) else INT64_MAX + 1


def _true_or_false(value: object) -> object:
    """Refuse anything but JSON true/false as a yes/no (pydantic would read 1, "yes" or "on" as true)."""
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


# A yes/no in a request body: JSON true or false only.
Flag = Annotated[bool, BeforeValidator(_true_or_false)]
# Ids a body names: JSON integers only (`true` would name offer, user or customer 1), bounded to their
# columns: a larger number would overflow the driver instead of answering 404. The bounds come before the
# validator so that they reach the OpenAPI schema as minimum/maximum (see Amount). Alert, offer and audit
# event ids are 64-bit; the others 32-bit.
BodyOfferId = Annotated[int, Field(ge=1, le=INT64_MAX), BeforeValidator(_json_integer)]
BodyId = Annotated[int, Field(ge=1, le=INT32_MAX), BeforeValidator(_json_integer)]
# The same ids in a path or a query, where they come as text: plain digits only.
_FromDigits = BeforeValidator(_plain_digits)
CustomerId = Annotated[BodyId, Path(), _FromDigits]
MachineId = Annotated[BodyId, Path(), _FromDigits]
SubscriptionId = Annotated[BodyId, Path(), _FromDigits]
CatalogVersion = Annotated[BodyId, Path(), _FromDigits]
AlertId = Annotated[BodyOfferId, Path(), _FromDigits]
OfferId = Annotated[BodyOfferId, Path(), _FromDigits]
CustomerFilter = Annotated[BodyId | None, Query(), _FromDigits]
MachineFilter = Annotated[BodyId | None, Query(), _FromDigits]
SubjectFilter = Annotated[BodyOfferId | None, Query(), _FromDigits]
# Counts a query names, in the same plain digits, each within its own bounds (a count may be 0 where an id may
# not): how many rows and from which, how many chart points, which console page, how many days.
Limit = Annotated[int, Field(ge=1, le=1000), Query(), _FromDigits]
Offset = Annotated[int, Field(ge=0, le=10_000_000), Query(), _FromDigits]
# Its upper bound is a setting: telemetry_view.check_limits refuses more, document_limits publishes it.
MaxPoints = Annotated[int, Field(ge=10), Query(), _FromDigits]
PageNumber = Annotated[int, Field(ge=1, le=100_000), Query(alias="page"), _FromDigits]
Days = Annotated[int, Field(ge=1, le=30), Query(), _FromDigits]

# Money in a body is finite (JSON's NaN is refused when the body is read, the text "NaN" by `_money`).
_Money = Annotated[float, Field(allow_inf_nan=False)]
# Money a customer paid, as an outcome reports it (hand-entered or from the CRM).
# The bounds come before the validator so that they stay on the number and reach the OpenAPI schema as
# minimum/maximum; after it pydantic publishes them as unknown `ge`/`le` keywords.
Amount = Annotated[_Money, Field(ge=0, le=100_000_000), BeforeValidator(_money)]
# An offer's price as the account manager edits it (`true` would approve it at 1.00).
Price = Annotated[_Money, Field(gt=0, le=10_000_000), BeforeValidator(_money)]


class Out(BaseModel):
    """Base of response bodies read from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


class ErrorOut(BaseModel):
    """Every error answer."""

    error: str
    detail: str


class MeOut(BaseModel):
    """The caller."""

    user_id: int
    name: str
    role: str
    customers: list[int] | None


class CustomerOut(Out):
    """A customer (tenant) and what it allows its data to be used for."""

    id: int
    tenant: str
    name: str
    purposes: list[str] = []
    # Purposes auto-registration assumed for a device seen on the broker; nobody has declared them yet.
    assumed: list[str] = []
    # The command that completes a killed or failed erasure; until it runs some archive months may not read.
    erasure_unfinished: str | None = None


class MachineOut(Out):
    """A machine with its latest prediction."""

    id: int
    customer_id: int
    code: str
    machine_type: str
    serial: str | None
    installed: date | None
    contract_tier: str
    risk: float | None = None
    failure_mode: str | None = None
    predicted_at: datetime | None = None


class TelemetryPoint(BaseModel):
    """One reading time (or the mean of a bucket when downsampled)."""

    ts: datetime
    readings: dict[str, float | None]


class TelemetryOut(BaseModel):
    """A machine's telemetry over a range."""

    machine_id: int
    start: datetime
    end: datetime
    rows: int
    downsampled: bool
    points: list[TelemetryPoint]


# Why a stored prediction's remaining life may be null (`estimate.remaining_life`, as on every page).
_LIFE = (
    "; null unless a failure model made the risk: a cold start or a risk from readings alone (status "
    "cold_start, fallback) has no remaining life, and a cap older versions stored for one is not shown"
)


class PredictionOut(Out):
    """One model output for a machine."""

    id: int
    machine_id: int
    ts: datetime
    status: str
    risk: float | None
    failure_mode: str | None
    rul_hours: float | None = Field(description="Remaining useful life in hours from `ts`" + _LIFE)
    rul_low: float | None = Field(description="Lower end of the remaining life's 80 % band, hours" + _LIFE)
    rul_high: float | None = Field(description="Upper end of the remaining life's 80 % band, hours" + _LIFE)
    eta: datetime | None
    eta_sensor: str | None
    anomaly_score: float | None
    contributions: list | None
    explanation: str | None
    model_version: str | None

    @model_validator(mode="before")
    @classmethod
    def _life_by_the_rule(cls, row: Any) -> dict:
        """The row's fields, its remaining life as `estimate.remaining_life` reads it."""
        values = {
            name: row.get(name) if isinstance(row, dict) else getattr(row, name) for name in cls.model_fields
        }
        life = estimate.remaining_life(SimpleNamespace(**values))
        return values | dict(zip(("rul_hours", "rul_low", "rul_high"), life, strict=True))


class AlertOut(Out):
    """A field-service alert with its evidence."""

    id: int
    customer_id: int
    machine_id: int
    failure_mode: str
    severity: str
    status: str
    risk: float
    lead_time_hours: float | None = Field(
        description="Hours from the latest prediction the alert took to its trend's limit crossing, else to "
        "the end of its remaining life (PredictionOut's `rul_hours`), as worked out when it took it; null "
        "without either (a cold start without a crossing)"
    )
    eta: datetime | None
    evidence: dict
    count: int
    model_version: str | None
    first_seen: datetime
    last_seen: datetime
    assignee_id: int | None
    acknowledged_at: datetime | None
    escalated_at: datetime | None
    resolved_at: datetime | None
    finding: str | None
    finding_text: str | None
    parts_used: list | None


class AssignIn(BaseModel):
    """Whom to send."""

    assignee_id: BodyId


class ResolveKnown(BaseModel):
    """A finding from the list (it becomes a training label); a text is optional."""

    finding: Literal["confirmed_fault", "replaced_before_failure", "no_fault_found"]
    text: str | None = Field(default=None, max_length=4000)
    parts_used: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=100)
    component: str | None = Field(default=None, max_length=64)
    mode: str | None = Field(default=None, max_length=64)


class ResolveOther(BaseModel):
    """Any other finding, described in words."""

    finding: Literal["other"]
    text: str = Field(min_length=1, max_length=4000)
    parts_used: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=100)
    component: str | None = Field(default=None, max_length=64)
    mode: str | None = Field(default=None, max_length=64)


ResolveIn = Annotated[ResolveKnown | ResolveOther, Field(discriminator="finding")]


class OfferOut(Out):
    """A proactive service offer."""

    id: int
    customer_id: int
    machine_id: int
    alert_id: int | None
    failure_mode: str
    catalog_item: str
    title: str
    reason: str
    price: float
    currency: str
    expected_value: float
    risk: float
    status: str
    model_version: str | None
    created_at: datetime
    decided_at: datetime | None
    reject_reason: str | None
    outcome_at: datetime | None
    revenue: float | None
    expires_at: datetime | None


class ApprovalOut(OfferOut):
    """An offer just approved."""

    warning: str | None = None  # set when no CRM destination is configured: nothing queued, never sent


class ApproveIn(BaseModel):
    """An approval, optionally with edits."""

    model_config = ConfigDict(extra="forbid")  # a misnamed field must not go unnoticed
    price: Price | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    reason: str | None = Field(default=None, min_length=1, max_length=4000)


class RejectIn(BaseModel):
    """Why the account manager will not send it."""

    model_config = ConfigDict(extra="forbid")  # a misnamed field must not go unnoticed
    reason: str = Field(min_length=1, max_length=4000)


class OutcomeIn(BaseModel):
    """What the customer said."""

    model_config = ConfigDict(extra="forbid")  # a misnamed field must not go unnoticed
    accepted: Flag
    revenue: Amount | None = None


class AuditEventOut(Out):
    """One row of the audit trail: who did what to which object, when, and the values before and after."""

    id: int
    at: datetime
    subject: str
    subject_id: int | None
    action: str
    actor_id: int | None
    actor: str | None
    data: dict
    before: dict | None
    after: dict | None


class LedgerRow(BaseModel):
    """Per model version: how alerts turned out and what offers earned."""

    model_version: str | None
    alerts: int
    resolved: int
    confirmed: int
    alert_precision: float | None
    offers: int
    accepted: int
    revenue: float | None  # the won amounts when all are in one currency; None when they are in several
    revenue_by_currency: dict[str, float]


class _SubscriptionScope(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: BodyId | None = None
    site_id: BodyId | None = None
    min_severity: Literal["medium", "high", "critical"] = "critical"


class EmailSubscriptionIn(_SubscriptionScope):
    """Be told of alerts by e-mail."""

    channel: Literal["email"]
    # No whitespace or control character: a mail header cannot carry them.
    address: str = Field(pattern=r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+$", max_length=320)

    @field_validator("address")
    @classmethod
    def _one_recipient(cls, value: str) -> str:
        value = subscription_address("email", value)  # as it is stored, compared and sent to
        if len(value) > 320:
            raise ValueError("longer than 320 characters in lower case")
        if problem := delivery.recipient_problem(value):
            raise ValueError(problem)
        return value


class WebhookSubscriptionIn(_SubscriptionScope):
    """Be told of alerts through a Teams/Slack-style incoming webhook."""

    channel: Literal["webhook"]
    address: str = Field(pattern=r"^https?://[^\s\x00-\x1f\x7f-\x9f]+$", max_length=500)

    @field_validator("address")
    @classmethod
    def _a_url_with_a_host(cls, value: str) -> str:
        try:
            host = httpx.URL(value).host
        except (httpx.InvalidURL, UnicodeError) as exc:  # UnicodeError: a bad IDNA label
            raise ValueError(f"not a URL: {exc}") from None
        if not host:
            raise ValueError("not a URL: it names no host")
        return value


SubscriptionIn = Annotated[EmailSubscriptionIn | WebhookSubscriptionIn, Field(discriminator="channel")]


class SubscriptionOut(Out):
    """A stored alert notification subscription."""

    id: int
    user_id: int
    customer_id: int | None
    site_id: int | None
    min_severity: str
    channel: str
    address: str  # a webhook's URL as fleet.redaction.redact_url shows it: scheme, host, route; secrets ***
    warning: str | None = None  # set when nothing can be sent by this channel (e-mail without SMTP)
    disabled_at: datetime | None = None  # set when its webhook answered 410 Gone: nothing is sent any more
    disabled_reason: str | None = None
    # set while its customer's alerts are not the owner's to read (`offers` withdrawn, account taken off)
    suspended_reason: str | None = None
    # set while its newest notification tried is being retried or was given up (api.notification_failures)
    delivery_problem: str | None = None
