"""The FastAPI application: built from settings, with its engine in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from api import auth, deps, errors, exposure
from api.console import actions as console_actions
from api.console import catalog_page as console_catalog
from api.console import ledger as console_ledger
from api.console import pages as console_pages
from api.console import subscriptions_page as console_subscriptions
from api.console.render import HERE as CONSOLE_DIR
from api.console.throttle import SignInThrottle
from api.page_cache import VersionedPages
from api.routers import admin, alerts, catalog, crm, export, fleet, notifications, offers
from api.schemas import ErrorOut
from fleet import bootstrap, erasure_ledger
from fleet import errors as fleet_errors
from fleet.db import engine_from_settings
from fleet.settings import Settings
from fleet.tables import utcnow

API_PREFIX = "/api/v1"
# The largest request is a catalog's YAML (catalog_versions.MAX_SOURCE characters, at most 2.4 MB as JSON
# with every character escaped). Past this the answer is 413 before more is read: a body is read whole
# before the caller's key is checked, so anyone could otherwise make a worker hold as much as they send.
MAX_BODY = 4 * 1024 * 1024
ERROR_RESPONSES = {
    status: {"model": ErrorOut, "description": text}
    for status, text in (
        (401, "No valid API key"),
        (403, "The role may not do this"),
        (404, "No such object for this caller (missing or another tenant's)"),
        (409, "The object's state does not allow this, or consent is missing"),
        (422, "The request does not meet the schema or a rule its operation states"),
    )
}


def create_app(settings: Settings) -> FastAPI:
    """The app: HTTP only (`servicecast policy` turns predictions into alerts and offers)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = bootstrap.ready_engine(settings)
        try:  # a worker started on its own (`servicecast api` checks before starting any)
            erasure_ledger.check_start(engine, settings.archive_url, process="api")
        except fleet_errors.ErasureUndone:
            engine.dispose()
            raise
        app.state.engine, app.state.settings = engine, settings
        app.state.reader = engine_from_settings(settings, read_only=True)
        app.state.alert_pages = VersionedPages("alerts", settings.api_page_cache_bytes)
        app.state.telemetry_reads = asyncio.Semaphore(settings.api_telemetry_concurrency)
        auth.principals.max_bytes = settings.api_key_cache_bytes
        yield
        app.state.reader.dispose()
        engine.dispose()

    app = FastAPI(
        title="servicecast",
        version="1.0.0",
        description="Failure predictions turned into field-service alerts and proactive service offers.",
        lifespan=lifespan,
        dependencies=[Depends(deps.refuse_nul), Depends(deps.refuse_repeated_query)],
        max_body_size=MAX_BODY,
        # Served by api.exposure, publicly, to admins only or not at all (SERVICECAST_API_DOCS).
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    errors.install(app)
    # The console's sessions and sign-in throttle read the time here, so tests can move it.
    app.state.clock = utcnow
    app.state.sign_ins = SignInThrottle(
        limit=settings.console_sign_in_max_failures,
        window=timedelta(minutes=settings.console_sign_in_window_min),
    )
    # First, so it answers GETs of the telemetry path before the FastAPI route documented there.
    app.router.routes.append(fleet.fast_telemetry_route(API_PREFIX))
    for router in (
        fleet.router,
        alerts.router,
        offers.router,
        admin.router,
        crm.router,
        notifications.router,
        export.router,
        catalog.router,
    ):
        app.include_router(router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    app.include_router(admin.health)
    app.include_router(console_pages.router)
    app.include_router(console_actions.router)
    app.include_router(console_ledger.router)
    app.include_router(console_catalog.router)
    app.include_router(console_subscriptions.router)
    app.mount("/static", StaticFiles(directory=CONSOLE_DIR / "static"), name="static")
    openapi = app.openapi

    def openapi_with_limits() -> dict:
        if app.openapi_schema is None:
            fleet.document_limits(openapi(), settings=settings, prefix=API_PREFIX)
        return app.openapi_schema

    app.openapi = openapi_with_limits
    exposure.install(app, settings)
    return app


def app_from_env() -> FastAPI:
    """The app as uvicorn workers build it (`--factory`), from SERVICECAST_* settings."""
    from fleet.settings import get_settings

    return create_app(get_settings())
