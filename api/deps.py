"""FastAPI dependencies as `Annotated` aliases: the session, the caller, and role checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api import auth
from api.errors import Forbidden, Unauthorized
from fleet.db import session
from fleet.settings import Settings

RIGHTS: dict[str, frozenset[str]] = {
    "fleet:read": frozenset({"admin", "field_service", "account_manager", "customer"}),
    "telemetry:read": frozenset({"admin", "field_service", "customer"}),
    "alerts:read": frozenset({"admin", "field_service", "account_manager", "customer"}),
    "alerts:write": frozenset({"admin", "field_service"}),
    "offers:read": frozenset({"admin", "account_manager", "customer"}),
    "offers:write": frozenset({"admin", "account_manager"}),
    "admin": frozenset({"admin"}),
}

_bearer = HTTPBearer(auto_error=False, description="An API key from `servicecast users add`")


def get_session(request: Request) -> Iterator[Session]:
    """A session per request: committed when the handler returns, rolled back when it raises."""
    with session(request.app.state.engine) as sess:
        yield sess


async def get_reader(request: Request) -> AsyncIterator[Session]:
    """A session for a read-only route that queries on the event loop; closed, never committed.

    The reads it serves are a few indexed lookups, shorter than the two thread-pool hops a sync
    session and a sync route would cost. It closes as soon as the route returns (`scope="function"`),
    before the response is sent: a connection held across an await could exhaust the pool, and a
    pool checkout waiting on the event loop would stall every request of the worker.
    """
    sess = Session(request.app.state.engine)
    try:
        yield sess
    finally:
        sess.close()


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings


# scope="function": the commit happens before the response is sent, so a client never hears "done"
# about a write that then fails to commit, nor reads its own write back before it is committed.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ReaderDep = Annotated[Session, Depends(get_reader, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> auth.Principal:
    """The caller behind the bearer token; 401 for a missing, garbage, expired or revoked key."""
    if credentials is None:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    token = credentials.credentials
    # A key seen in the last few seconds costs no database round trip and no thread-pool hop.
    principal = auth.principals.get(token)
    if principal is None:
        principal = await run_in_threadpool(auth.principals.authenticate, request.app.state.engine, token)
    if principal is None:
        raise Unauthorized("the API key is unknown, expired or revoked")
    return principal


PrincipalDep = Annotated[auth.Principal, Depends(get_principal)]


def allowed(right: str) -> Callable[[auth.Principal], Awaitable[auth.Principal]]:
    """A dependency that lets the caller through only if its role has `right` (403 otherwise)."""

    # Async because it does no I/O: a sync dependency would cost a thread-pool hop per request.
    async def check(principal: PrincipalDep) -> auth.Principal:
        if principal.role not in RIGHTS[right]:
            raise Forbidden(f"the {principal.role} role may not use {right}")
        return principal

    return check


FleetReader = Annotated[auth.Principal, Depends(allowed("fleet:read"))]
TelemetryReader = Annotated[auth.Principal, Depends(allowed("telemetry:read"))]
AlertReader = Annotated[auth.Principal, Depends(allowed("alerts:read"))]
AlertWriter = Annotated[auth.Principal, Depends(allowed("alerts:write"))]
OfferReader = Annotated[auth.Principal, Depends(allowed("offers:read"))]
OfferWriter = Annotated[auth.Principal, Depends(allowed("offers:write"))]
Admin = Annotated[auth.Principal, Depends(allowed("admin"))]
