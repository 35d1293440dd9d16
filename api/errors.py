"""One error path: domain errors and bad requests become `{"error": code, "detail": text}`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from api import json_body
from fleet import errors
from fleet.redaction import redact_text, redact_url

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

STATUS = {
    errors.NotFound: 404,
    errors.AlreadyExists: 409,
    errors.InvalidInput: 422,
    errors.ArchiveUnreadable: 503,
}
log = logging.getLogger(__name__)


class Unauthorized(errors.ServicecastError):
    """No valid credential."""

    code = "unauthorized"


class Forbidden(errors.ServicecastError):
    """The role does not allow this."""

    code = "forbidden"


class Conflict(errors.ServicecastError):
    """The object is not in a state that allows this."""

    code = "conflict"


class ConsentMissing(errors.ServicecastError):
    """The customer has not granted this use of its data."""

    code = "consent_missing"


STATUS.update({Unauthorized: 401, Forbidden: 403, Conflict: 409, ConsentMissing: 409})


def status_of(exc: errors.ServicecastError) -> int:
    """The HTTP status the API answers this error with."""
    return next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)


def wants_page(request: Request) -> bool:
    """A browser asking for something outside the JSON API (an unknown or mistyped console address)."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def log_fault(request: Request, exc: errors.ServicecastError) -> None:
    """Log an error that is the store's fault, not the caller's, with its cause: the operator must hear."""
    log.error("%s %s: %s (%r)", request.method, request.url.path, exc, exc.__cause__)


def body(code: str, detail: str) -> dict:
    """The stable error body."""
    return {"error": code, "detail": detail}


def invalid_detail(error: Mapping) -> str:
    """A pydantic error as the 422's detail, `where: what`; a refused URL (a field's value, or an unknown
    field's name) is shown without its secrets."""
    where = ".".join(redact_url(str(part)) for part in error.get("loc", ()))
    return f"{where}: {redact_text(error.get('msg', 'invalid'), *_texts(error.get('input')))}"


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""
    # Imported here: the domain errors above are raised by the service code of commands that serve no HTTP
    # (`servicecast policy`, `catalog list`), whose start would otherwise import FastAPI (~0.5 CPU-s).
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    @app.exception_handler(errors.ServicecastError)
    async def _domain(request: Request, exc: errors.ServicecastError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500:
            log_fault(request, exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(body(exc.code, str(exc)), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = invalid_detail(exc.errors()[0] if exc.errors() else {})
        return JSONResponse(body("invalid_request", detail), status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if wants_page(request):
            # Imported here: the console's templates import this module.
            from api.console.login import signed_in
            from api.console.render import http_error_page

            await run_in_threadpool(signed_in, request)  # the page's menu and name; the lookup blocks
            return http_error_page(request, exc.status_code, exc.headers)
        if exc.status_code == 400 and (problem := json_body.problem(exc.__cause__)):  # FastAPI's reading
            return JSONResponse(body("invalid_request", f"body: {problem}"), status_code=422)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


def _texts(value: object) -> list[str]:
    """The strings in a refused input (keys and values, at any depth): any may be a URL with a secret that
    the error's message quotes."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for pair in value.items() for part in pair for text in _texts(part)]
    if isinstance(value, list | tuple):
        return [text for part in value for text in _texts(part)]
    return []
