"""The API's own documentation and metrics: served to anyone, to admins only, or not at all."""

from __future__ import annotations

from importlib import resources

from fastapi import Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, make_asgi_app

from api import auth
from api.console import login
from api.console.render import LoginRequired, SessionEnded
from api.deps import Credentials, get_principal, has_right
from api.errors import Forbidden, Unauthorized
from fleet.db import session
from fleet.settings import Settings

OPENAPI_URL = "/openapi.json"
DOCS_FILES = "/docs-files"


async def admin_only(request: Request, credentials: Credentials) -> None:
    """401 unless signed in (an API key, or a console session in a browser), 403 unless an admin."""
    if credentials is not None:
        who = await get_principal(request, credentials)
    else:
        who = await run_in_threadpool(_console_caller, request)
    if not has_right(who, "admin"):
        raise Forbidden(f"the {who.role} role may not read this")


def _console_caller(request: Request) -> auth.Principal:
    with session(request.app.state.engine) as sess:
        try:
            return login.viewer(request, sess)
        except (LoginRequired, SessionEnded):
            raise Unauthorized("sign in as an admin: an API key, or the console") from None


def install(app: FastAPI, settings: Settings) -> None:
    """Serve /docs, /redoc, /openapi.json and /metrics as SERVICECAST_API_DOCS and _API_METRICS say."""
    if settings.api_docs != "off":
        guard = [Depends(admin_only)] if settings.api_docs == "admin" else []

        @app.get(OPENAPI_URL, include_in_schema=False, dependencies=guard)
        async def openapi() -> JSONResponse:
            return JSONResponse(app.openapi())

        # The viewers' files come with the app (no CDN): the docs work offline and behind a firewall.
        app.mount(DOCS_FILES, StaticFiles(directory=resources.files("fastapi_offline") / "static"))

        @app.get("/docs", include_in_schema=False, dependencies=guard)
        async def swagger() -> HTMLResponse:
            return get_swagger_ui_html(
                openapi_url=OPENAPI_URL,
                title=f"{app.title} API",
                swagger_js_url=f"{DOCS_FILES}/swagger-ui-bundle.js",
                swagger_css_url=f"{DOCS_FILES}/swagger-ui.css",
                swagger_favicon_url="/static/favicon.svg",
            )

        @app.get("/redoc", include_in_schema=False, dependencies=guard)
        async def redoc() -> HTMLResponse:
            return get_redoc_html(
                openapi_url=OPENAPI_URL,
                title=f"{app.title} API",
                redoc_js_url=f"{DOCS_FILES}/redoc.standalone.js",
                redoc_favicon_url="/static/favicon.svg",
                with_google_fonts=False,
            )

    if settings.api_metrics == "public":
        app.mount("/metrics", make_asgi_app())
    elif settings.api_metrics == "admin":

        @app.get("/metrics", include_in_schema=False, dependencies=[Depends(admin_only)])
        def metrics() -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
