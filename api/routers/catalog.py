"""The service catalog in force (api/catalog.yaml or a version added here), its versions, and each
customer's segment and offer language."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api import catalog_versions
from api.audit import log_event
from api.deps import Admin, OfferReader, SessionDep
from api.errors import Conflict, Forbidden
from api.schemas import CatalogVersion, CustomerId
from api.scope import get_visible
from fleet.tables import Customer, utcnow

router = APIRouter(prefix="/catalog", tags=["catalog"])


class SalesProfile(BaseModel):
    """Which of the catalog's segments prices a customer's offers, and their language."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)
    segment: str | None = Field(default=None, max_length=32)
    language: Literal["en", "de"] | None = None


class CatalogVersionIn(BaseModel):
    """A catalog as YAML, checked as the file is (problems named with their lines)."""

    model_config = ConfigDict(extra="forbid")
    yaml: str = Field(min_length=1, max_length=catalog_versions.MAX_SOURCE)


@router.get("")
def get_catalog(sess: SessionDep, who: OfferReader) -> dict:
    """The catalog in force: version, currency, items (eligibility, price points, texts), downtime costs."""
    if who.role == "customer":
        raise Forbidden("the catalog and its price points are the OEM's")
    return catalog_versions.in_force(sess).model_dump(mode="json")


@router.get("/versions")
def list_versions(sess: SessionDep, who: Admin) -> list[catalog_versions.ListedVersion]:
    """Every stored catalog version, newest first, then the shipped file; which one is in force."""
    return catalog_versions.listing(sess)


@router.post("/versions", status_code=201)
def add_version(body: CatalogVersionIn, sess: SessionDep, who: Admin) -> dict:
    """Store a new catalog version (not yet in force); 422 lists every problem with its line; audited."""
    return catalog_versions.add(sess, source=body.yaml, by=who, now=utcnow()).model_dump(mode="json")


@router.post("/versions/{version}/activate")
def activate_version(version: CatalogVersion, sess: SessionDep, who: Admin) -> dict:
    """Put a stored version in force for new offers; audited with the version it replaces."""
    return catalog_versions.activate(sess, version=version, by=who, now=utcnow()).model_dump(mode="json")


@router.put("/customers/{customer_id}", response_model=SalesProfile)
def set_sales_profile(customer_id: CustomerId, body: SalesProfile, sess: SessionDep, who: Admin):
    """Set a customer's segment (one the catalog names) and offer language; audited."""
    customer = get_visible(sess, Customer, customer_id, who, "customer")
    segments = catalog_versions.in_force(sess).segments
    if body.segment is not None and body.segment not in segments:
        # 409, not 422: the request is well formed; the catalog in force names other segments.
        raise Conflict(f"segment must be one of the catalog's: {', '.join(segments)}")
    before = {"segment": customer.segment, "language": customer.language}
    customer.segment, customer.language = body.segment, body.language
    log_event(sess, "customer", customer.id, "sales_profile", who, {}, before=before, after=body.model_dump())
    return customer
