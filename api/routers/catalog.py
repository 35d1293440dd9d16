"""The service catalog in force (api/catalog.yaml), for account managers and admins."""

from __future__ import annotations

from fastapi import APIRouter

from api import catalog
from api.deps import OfferReader
from api.errors import Forbidden

router = APIRouter(prefix="/catalog", tags=["catalog"])


@router.get("")
def get_catalog(who: OfferReader) -> dict:
    """The catalog's version, currency, items with eligibility, price points and texts, and downtime costs."""
    if who.role == "customer":
        raise Forbidden("the catalog and its price points are the OEM's")
    return catalog.default().model_dump(mode="json")
