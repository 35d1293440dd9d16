"""The service catalog in force (api/catalog.yaml), and each customer's segment and offer language."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api import catalog
from api.audit import log_event
from api.deps import Admin, OfferReader, SessionDep
from api.errors import Conflict, Forbidden
from api.schemas import CustomerId
from api.scope import get_visible
from fleet.tables import Customer

router = APIRouter(prefix="/catalog", tags=["catalog"])


class SalesProfile(BaseModel):
    """Which of the catalog's segments prices a customer's offers, and their language."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)
    segment: str | None = Field(default=None, max_length=32)
    language: Literal["en", "de"] | None = None


@router.get("")
def get_catalog(who: OfferReader) -> dict:
    """The catalog's version, currency, items with eligibility, price points and texts, and downtime costs."""
    if who.role == "customer":
        raise Forbidden("the catalog and its price points are the OEM's")
    return catalog.default().model_dump(mode="json")


@router.put("/customers/{customer_id}", response_model=SalesProfile)
def set_sales_profile(customer_id: CustomerId, body: SalesProfile, sess: SessionDep, who: Admin):
    """Set a customer's segment (one the catalog names) and offer language; audited."""
    customer = get_visible(sess, Customer, customer_id, who, "customer")
    if body.segment is not None and body.segment not in catalog.default().segments:
        # 409, not 422: the request is well formed; the catalog in force names other segments.
        raise Conflict(f"segment must be one of the catalog's: {', '.join(catalog.default().segments)}")
    before = {"segment": customer.segment, "language": customer.language}
    customer.segment, customer.language = body.segment, body.language
    log_event(sess, "customer", customer.id, "sales_profile", who, {}, before=before, after=body.model_dump())
    return customer
