"""Console sign-in: an API key exchanged for an HttpOnly cookie, and the per-page caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api import auth
from api.console.render import LoginRequired
from api.deps import RIGHTS
from api.errors import Forbidden
from fleet.db import session

KEY_COOKIE = "servicecast_key"
HOME = {
    "admin": "/admin",
    "field_service": "/alerts",
    "account_manager": "/offers",
    "customer": "/fleet",
}


def page_session(request: Request) -> Iterator[Session]:
    """A session per page or action: committed when it returns, rolled back when it raises."""
    with session(request.app.state.engine) as sess:
        yield sess


# scope="function": commit before the response goes out, so a redirect never outruns its own write.
PageSession = Annotated[Session, Depends(page_session, scope="function")]


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
    if who.role not in RIGHTS[right]:
        raise Forbidden(f"the {who.role.replace('_', ' ')} role may not open this page")


def safe_next(target: str | None, who: auth.Principal) -> str:
    """Where to go after sign-in: a local path only, else the role's home page."""
    if target and target.startswith("/") and not target.startswith("//") and not target.startswith("/login"):
        return target
    return HOME[who.role]
