"""Console sign-in: the per-page caller from the session cookie, and the one check of every form post."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Form, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from api import auth
from api.console import sessions
from api.console.render import LoginRequired, SessionEnded
from api.deps import has_right
from api.errors import Forbidden
from fleet.db import for_writing, session

log = logging.getLogger(__name__)
HOME = {
    "admin": "/admin",
    "field_service": "/alerts",
    "account_manager": "/offers",
    "customer": "/fleet",
}


def page_session(request: Request) -> Iterator[Session]:
    """The request's session; a form post's takes SQLite's write lock as it begins (`for_writing`).

    A post reads (its session, its object) before it writes: deferred, that upgrade fails at once when
    another process (ingester, scorer, policy, router) committed in between.
    """
    engine = request.app.state.engine
    with session(for_writing(engine) if request.method == "POST" else engine) as sess:
        yield sess


# Committed before the response goes out (scope="function"), so a redirect never outruns its own write.
PageSession = Annotated[Session, Depends(page_session, scope="function")]


def now(request: Request) -> datetime:
    """The time the console's sessions and sign-in throttle go by (`app.state.clock`)."""
    return request.app.state.clock()


def viewer(request: Request, sess: PageSession) -> auth.Principal:
    """The signed-in caller; the login page without a session cookie, a 401 one for a dead session."""
    settings = request.app.state.settings
    session_id = request.cookies.get(sessions.cookie_name(settings))
    if not session_id:
        raise LoginRequired
    at = now(request)
    current = sessions.resume(sess, session_id, settings=settings, now=at)
    if current is None:
        raise SessionEnded
    if current.touch_due and request.method == "POST":
        sessions.touch(sess, session_id, now=at)  # the post's transaction holds the write lock already
    elif current.touch_due:
        sessions.touch_aside(request.app.state.engine, session_id, now=at)
    request.state.principal, request.state.csrf_token = current.principal, current.csrf_token
    return current.principal


Viewer = Annotated[auth.Principal, Depends(viewer)]


def signed_in(request: Request) -> auth.Principal | None:
    """The caller of a request no console route took (an unknown address), or None when signed out or when
    the store cannot say (the page is still a 404, not a 500 about something else)."""
    try:
        with session(request.app.state.engine) as sess:
            return viewer(request, sess)
    except LoginRequired:  # and a session that ended: the page is the signed-out one
        return None
    except SQLAlchemyError as exc:
        log.warning("the %s page could not look up who is signed in: %s", request.url.path, exc)
        return None


def same_site(request: Request) -> None:
    """403 for a request that another site's page sent, as its Origin or Sec-Fetch-Site header says."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise Forbidden("this form was sent from another site")
    origin = request.headers.get("origin")
    if origin is None:  # not a browser, or an old one: the CSRF token still has to match
        return
    public = urlsplit(request.app.state.settings.public_url)
    # The Host header is the address the browser itself sent the form to: another site cannot set it.
    if origin not in (
        f"{public.scheme}://{public.netloc}",
        f"{request.url.scheme}://{request.headers.get('host')}",
    ):
        raise Forbidden("this form was sent from another site")


SameSite = Depends(same_site)


def form_caller(
    request: Request, sess: PageSession, csrf_token: Annotated[str, Form(max_length=200)] = ""
) -> auth.Principal:
    """The caller of a state-changing form: same site, a live session, and that session's CSRF token."""
    same_site(request)
    who = viewer(request, sess)
    if not hmac.compare_digest(csrf_token.encode(), request.state.csrf_token.encode()):
        raise Forbidden("this form is out of date or not from this console: reload the page and try again")
    # Checked: end this transaction, so that the action's own takes the write lock afresh and an action
    # that writes through the engine (new user, revoked keys, promoted model) is not locked out by it.
    sess.commit()
    return who


# Every console POST but the sign-in takes its caller from here.
Actor = Annotated[auth.Principal, Depends(form_caller)]


def require(who: auth.Principal, right: str) -> None:
    """403 page unless the caller's role has `right`."""
    if not has_right(who, right):
        raise Forbidden(f"the {who.role.replace('_', ' ')} role may not open this page")


def safe_next(target: str | None, who: auth.Principal) -> str:
    """Where to go after sign-in: a local path only, else the role's home page."""
    if target and target.startswith("/") and not target.startswith("//") and not target.startswith("/login"):
        return target
    return HOME[who.role]
