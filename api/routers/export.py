"""`GET /api/v1/export`: a customer's data as one streamed ZIP (EU Data Act access)."""

from __future__ import annotations

import itertools

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from api.deps import FleetReader, SettingsDep
from api.errors import Forbidden
from fleet import errors, export
from fleet.tables import Customer

router = APIRouter(tags=["export"])


@router.get("/export", response_class=StreamingResponse)
def export_data(request: Request, who: FleetReader, settings: SettingsDep, tenant: str | None = None):
    """All data of the caller's machines (a customer), or of `tenant` (an admin): Parquet, CSV, manifest."""
    if who.role not in ("customer", "admin"):
        raise Forbidden(f"the {who.role} role may not export a customer's data")
    engine = request.app.state.reader
    with engine.connect() as conn:
        if tenant is None:
            if who.customers is None or len(who.customers) != 1:
                # 404, not 422: the request is well-formed, it just names no customer of the caller's.
                raise errors.NotFound("no customer named: add ?tenant=CODE to export one customer's data")
            tenant = conn.scalar(select(Customer.tenant).where(Customer.id == next(iter(who.customers))))
        customer_id = conn.scalar(select(Customer.id).where(Customer.tenant == tenant))
    if customer_id is None or not who.sees(customer_id):
        raise errors.NotFound(f"customer {tenant} not found")  # another tenant's: as if missing
    name = f"servicecast-export-{tenant}.zip"
    chunks = export.stream(engine, tenant=tenant, archive_url=settings.archive_url)
    first = next(chunks)  # checks the archive files: an unreadable one is an error answer, not a cut ZIP
    return StreamingResponse(
        itertools.chain([first], chunks),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
