"""Console sign-in: an API key exchanged for an HttpOnly cookie, and the per-page caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api import auth
from api.console.render import LoginRequired
from api.deps import SessionDep, has_right
from api.errors import Forbidden

KEY_COOKIE = "servicecast_key"
HOME = {
    "admin": "/admin",
    "field_service": "/alerts",
    "account_manager": "/offers",
    "customer": "/fleet",
}


# The API's own session dependency: committed before the response goes out, so a redirect never
# outruns its own write.
PageSession = SessionDep


def viewer(request: Request, sess: PageSession) -> auth.Principal:
    """The signed-in caller; the login page for a missing, expired or revoked key."""
    token = request.cookies.get(KEY_COOKIE)
    principal = auth.authenticate(sess, token) if token else None
    if principal is None:
        raise LoginRequired
    request.state.principal = principal
    return principal


Viewer = Annotated[auth.Principal, Depends(viewer)]


def require(who: auth.Principal, right: str) -> None:
    """403 page unless the caller's role has `right`."""
    if not has_right(who, right):
        raise Forbidden(f"the {who.role.replace('_', ' ')} role may not open this page")


def safe_next(target: str | None, who: auth.Principal) -> str:
    """Where to go after sign-in: a local path only, else the role's home page."""
    if target and target.startswith("/") and not target.startswith("//") and not target.startswith("/login"):
        return target
    return HOME[who.role]
