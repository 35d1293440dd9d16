"""Console sessions: a random id in an HttpOnly cookie, stored only as its SHA-256, with idle and max age."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from fastapi import Response
from sqlalchemy import Engine, delete, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from api import auth
from fleet.db import session
from fleet.settings import Settings
from fleet.tables import ApiKey, ConsoleSession, User

COOKIE = "servicecast_session"
# Browsers accept a `__Host-` cookie only with Secure, Path=/ and no Domain, so over https nobody on a
# sibling host can plant or overwrite it; over plain http (the local demo) they refuse it altogether.
SECURE_COOKIE = f"__Host-{COOKIE}"
# A page view writes `last_seen_at` at most once a minute, so idle expiry is exact to the minute.
TOUCH_EVERY = timedelta(minutes=1)
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Current:
    """A live session: who is signed in, and the token its forms must carry."""

    principal: auth.Principal
    csrf_token: str
    touch_due: bool = False  # `last_seen_at` is TOUCH_EVERY old: the caller writes it (`touch`)


def is_secure(settings: Settings) -> bool:
    """Whether the console is served over https, as its public URL says."""
    return urlsplit(settings.public_url).scheme == "https"


def cookie_name(settings: Settings) -> str:
    """The session cookie's name: `__Host-` prefixed over https."""
    return SECURE_COOKIE if is_secure(settings) else COOKIE


def lifetime(settings: Settings) -> timedelta:
    """How long a session lives at most, however active."""
    return timedelta(hours=settings.console_session_max_h)


def set_cookie(response: Response, session_id: str, settings: Settings) -> None:
    """Hand the session id to the browser: HttpOnly, SameSite=Lax, Path=/, no Domain; Secure over https."""
    response.set_cookie(
        cookie_name(settings),
        session_id,
        max_age=int(lifetime(settings).total_seconds()),
        httponly=True,
        samesite="lax",
        secure=is_secure(settings),
        path="/",
    )


def clear_cookie(response: Response, settings: Settings) -> None:
    """Tell the browser to drop the session cookie (a `__Host-` one only listens to a Secure answer)."""
    response.delete_cookie(
        cookie_name(settings), path="/", secure=is_secure(settings), httponly=True, samesite="lax"
    )


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(sess: Session, *, key_id: int, settings: Settings, now: datetime) -> tuple[str, str]:
    """A new session on an API key: (session id, CSRF token); expired, idle and revoked ones are purged."""
    idle_since = now - timedelta(minutes=settings.console_session_idle_min)
    revoked = select(ApiKey.id).where(ApiKey.revoked_at.is_not(None))
    sess.execute(
        delete(ConsoleSession).where(
            or_(
                ConsoleSession.expires_at <= now,
                ConsoleSession.last_seen_at <= idle_since,
                ConsoleSession.api_key_id.in_(revoked),
            )
        )
    )
    session_id, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    sess.add(
        ConsoleSession(
            id_hash=_digest(session_id),
            api_key_id=key_id,
            csrf_token=csrf_token,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime(settings),
        )
    )
    return session_id, csrf_token


def resume(sess: Session, session_id: str, *, settings: Settings, now: datetime) -> Current | None:
    """The live session of a cookie, or None once it was ended, expired or its key revoked."""
    row = sess.execute(
        select(ConsoleSession, ApiKey, User)
        .join(ApiKey, ApiKey.id == ConsoleSession.api_key_id)
        .join(User, User.id == ApiKey.user_id)
        .where(ConsoleSession.id_hash == _digest(session_id))
    ).first()
    if row is None:
        return None
    console, key, user = row
    idle = timedelta(minutes=settings.console_session_idle_min)
    principal = auth.principal_of(sess, key, user, now)
    if principal is None or now >= console.expires_at or now - console.last_seen_at >= idle:
        return None  # its row goes with a later sign-in's purge
    return Current(principal, console.csrf_token, touch_due=now - console.last_seen_at >= TOUCH_EVERY)


def touch(sess: Session, session_id: str, *, now: datetime) -> None:
    """Mark the session seen at `now` (in a transaction that may write: see `touch_aside`)."""
    sess.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id_hash == _digest(session_id), ConsoleSession.last_seen_at < now)
        .values(last_seen_at=now)
    )


def touch_aside(engine: Engine, session_id: str, *, now: datetime) -> bool:
    """`touch` in its own short transaction, for a page view; False when the database stayed busy.

    A page view reads in a transaction that must not turn into a write (on SQLite it would fail at once
    if another process committed since its first read), and a skipped touch costs only idle-expiry
    precision: the next view within the idle time touches it.
    """
    try:
        with session(engine) as sess:
            touch(sess, session_id, now=now)
    except OperationalError as exc:
        log.warning("session touch skipped, database busy: %s", str(exc).splitlines()[0])
        return False
    return True


def end(sess: Session, session_id: str) -> None:
    """End a session (sign-out): its cookie is worthless from now on, wherever it was copied to."""
    sess.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == _digest(session_id)))
