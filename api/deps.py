"""FastAPI dependencies as `Annotated` aliases: the session, the caller, and role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
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


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_principal(
    sess: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> auth.Principal:
    """The caller behind the bearer token; 401 for a missing, garbage, expired or revoked key."""
    if credentials is None:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    principal = auth.authenticate(sess, credentials.credentials)
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
