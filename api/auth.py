"""API keys and who they belong to: roles, and the customers a principal may see."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from fleet import audit, errors, registry
from fleet.db import for_writing, session
from fleet.tables import AccountAssignment, ApiKey, User, utcnow
from fleet.tables.workflow import ROLES

log = logging.getLogger(__name__)

KEY_PREFIX = "sc"
# A key's last use is written at most this often: a busy key must not make every lookup a write.
LAST_USED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller; `customers` is None for staff who see every customer."""

    user_id: int
    name: str
    role: str
    customers: frozenset[int] | None

    def sees(self, customer_id: int) -> bool:
        """Whether objects of this customer exist for the caller."""
        return self.customers is None or customer_id in self.customers


def _hash(secret: str) -> str:
    # Keys are 256-bit random secrets, so a fast hash is enough; slow hashes guard guessable passwords.
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key() -> tuple[str, str, str]:
    """A fresh key as (full token, prefix, hash of the secret part)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"{KEY_PREFIX}_{prefix}_{secret}", prefix, _hash(secret)


def create_user(
    *,
    engine: Engine,
    name: str,
    role: str,
    customer: str | None = None,
    accounts: tuple[str, ...] = (),
    email: str | None = None,
    expires_days: int | None = None,
    by: audit.Actor | None = None,
) -> tuple[User, str]:
    """Create a user and its first API key; the key is returned once and never stored in clear."""
    if role not in ROLES:
        raise errors.InvalidInput(f"role must be one of {', '.join(ROLES)}")
    if (role == "customer") != (customer is not None):
        raise errors.InvalidInput("--customer is required for the customer role and only for it")
    try:
        with session(for_writing(engine)) as sess:
            customer_id = registry.get_customer(sess, customer).id if customer else None
            user = User(name=name, role=role, customer_id=customer_id, email=email)
            sess.add(user)
            sess.flush()
            for tenant in accounts:
                account = registry.get_customer(sess, tenant)
                sess.add(AccountAssignment(user_id=user.id, customer_id=account.id))
            created = {"name": name, "role": role, "customer": customer, "accounts": sorted(accounts)}
            audit.record(sess, "user", user.id, "user_created", by, after=created)
            token = _add_key(sess, user, expires_days, by)
    except IntegrityError:
        raise errors.AlreadyExists(f"user {name!r} exists already") from None
    return user, token


def issue_key(
    *, engine: Engine, name: str, expires_days: int | None = None, by: audit.Actor | None = None
) -> str:
    """Another API key for an existing user."""
    with session(for_writing(engine)) as sess:
        user = sess.scalar(select(User).where(User.name == name))
        if user is None:
            raise errors.NotFound(f"no user {name!r}")
        return _add_key(sess, user, expires_days, by)


def _add_key(sess: Session, user: User, expires_days: int | None, by: audit.Actor | None) -> str:
    token, prefix, secret_hash = new_key()
    expires = utcnow() + timedelta(days=expires_days) if expires_days else None
    key = ApiKey(user_id=user.id, prefix=prefix, secret_hash=secret_hash, expires_at=expires)
    sess.add(key)
    sess.flush()
    # The key's public prefix only: the secret never reaches the trail.
    after = {"user": user.name, "prefix": prefix, "expires_at": expires.isoformat() if expires else None}
    audit.record(sess, "api_key", key.id, "key_created", by, after=after)
    return token


def revoke_keys(*, engine: Engine, name: str, by: audit.Actor | None = None) -> int:
    """Revoke every key of a user; returns how many were active."""
    with session(for_writing(engine)) as sess:
        query = select(ApiKey).join(User, ApiKey.user_id == User.id)
        keys = sess.scalars(query.where(User.name == name, ApiKey.revoked_at.is_(None))).all()
        for key in keys:
            key.revoked_at = utcnow()
            after = {"user": name, "prefix": key.prefix, "revoked_at": key.revoked_at.isoformat()}
            audit.record(sess, "api_key", key.id, "key_revoked", by, before={"revoked_at": None}, after=after)
        user_ids = {key.user_id for key in keys}
    # This process forgets the keys at once; other processes within `CACHE_SECONDS`.
    for user_id in user_ids:
        principals.forget_user(user_id)
    return len(keys)


def set_disabled(*, engine: Engine, name: str, disabled: bool, by: audit.Actor | None = None) -> bool:
    """Disable a user (its keys and console sessions stop working) or enable it again; False if unchanged."""
    with session(for_writing(engine)) as sess:
        user = sess.scalar(select(User).where(User.name == name))
        if user is None:
            raise errors.NotFound(f"no user {name!r}")
        if (user.disabled_at is not None) == disabled:
            return False
        before = {"disabled_at": user.disabled_at.isoformat() if user.disabled_at else None}
        user.disabled_at = utcnow() if disabled else None
        after = {"disabled_at": user.disabled_at.isoformat() if user.disabled_at else None}
        action = "user_disabled" if disabled else "user_enabled"
        audit.record(sess, "user", user.id, action, by, before=before, after=after)
        user_id = user.id
    principals.forget_user(user_id)
    return True


def _use_due(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at >= LAST_USED_EVERY


def _note_use(key_id: int, now: datetime):  # noqa: ANN202
    """UPDATE of a key's last use, unless another request or process wrote it within LAST_USED_EVERY."""
    stale = or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - LAST_USED_EVERY)
    return update(ApiKey).where(ApiKey.id == key_id, stale).values(last_used_at=now)


def note_use(engine: Engine, key_id: int, now: datetime) -> None:
    """Record that a key authenticated a request; a database too busy to take it refuses no request."""
    try:
        with engine.begin() as conn:
            conn.execute(_note_use(key_id, now))
    except OperationalError as exc:
        log.warning("could not record the use of API key %d: %s", key_id, str(exc).splitlines()[0])


def authenticate(sess: Session, token: str, now: datetime | None = None) -> Principal | None:
    """The principal behind a bearer token, or None for a garbage, unknown, expired or revoked key."""
    found = _lookup(sess, token, now or utcnow())
    return None if found is None else found[0]


def identify(sess: Session, token: str, now: datetime | None = None) -> tuple[Principal, int] | None:
    """`authenticate` for a sign-in, in its writing session: the id of the key (a console session hangs
    on the key it was made with), and the key's use recorded."""
    now = now or utcnow()
    found = _lookup(sess, token, now)
    if found is None:
        return None
    if _use_due(found[3], now):
        sess.execute(_note_use(found[2], now))
    return found[0], found[2]


def principal_of(sess: Session, key: ApiKey, user: User, now: datetime) -> Principal | None:
    """The principal of a key and its user; None once the key is revoked or expired or the user disabled."""
    if key.revoked_at or user.disabled_at or (key.expires_at and key.expires_at <= now):
        return None
    return principal_of_user(sess, user)


def principal_of_user(sess: Session, user: User) -> Principal:
    """What the user may see now, whichever of its keys it comes with."""
    return Principal(user.id, user.name, user.role, _visible_customers(sess, user))


def _lookup(
    sess: Session, token: str, now: datetime
) -> tuple[Principal, datetime | None, int, datetime | None] | None:
    """(principal, key expiry, key id, key's last use) of a valid token."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    row = sess.execute(
        select(ApiKey, User).join(User, ApiKey.user_id == User.id).where(ApiKey.prefix == parts[1])
    ).first()
    if row is None:
        return None
    key, user = row
    if not hmac.compare_digest(key.secret_hash, _hash(parts[2])):
        return None
    principal = principal_of(sess, key, user, now)
    return None if principal is None else (principal, key.expires_at, key.id, key.last_used_at)


def _visible_customers(sess: Session, user: User) -> frozenset[int] | None:
    if user.role == "customer":
        return frozenset({user.customer_id})
    if user.role == "account_manager":
        query = select(AccountAssignment.customer_id).where(AccountAssignment.user_id == user.id)
        return frozenset(sess.scalars(query))
    return None


CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    key_expires: datetime | None
    stale_at: float
    bytes: int


def _entry_bytes(principal: Principal) -> int:
    # The entry, its digest, the principal and its strings (~0.5 kB), plus the ids of its customers.
    customers = principal.customers
    return 512 + (0 if customers is None else sys.getsizeof(customers) + 32 * len(customers))


class PrincipalCache:
    """Recently authenticated keys, so that a request costs no key lookup in the database.

    Entries are found by the SHA-256 of the whole token and live `ttl` seconds. A key's own expiry is
    checked on every hit; a revocation, a disabled user or a changed account assignment reaches this
    process at once when made here (`revoke_keys`), and within `ttl` seconds when made by another.
    At most `size` entries and about `max_bytes` of memory (an account manager's principal holds all
    its customers' ids) are kept; the oldest go first.
    """

    def __init__(
        self,
        ttl: float = CACHE_SECONDS,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = 8 * 2**20,
    ):
        self.ttl, self.size, self.clock, self.max_bytes = ttl, size, clock, max_bytes
        self.bytes = 0
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()  # lookups that miss store from the thread pool

    def get(self, token: str, now: datetime | None = None) -> Principal | None:
        """The cached principal of a token, or None if it is unknown here, stale or past its expiry."""
        entry = self._entries.get(_hash(token))
        if entry is None or entry.stale_at <= self.clock():
            return None
        if entry.key_expires is not None and entry.key_expires <= (now or utcnow()):
            return None
        return entry.principal

    def authenticate(self, engine: Engine, token: str, writer: Engine | None = None) -> Principal | None:
        """`authenticate` through the cache: the database is asked only on a miss, and then the key's
        use is recorded through `writer` (at most once a minute)."""
        principal = self.get(token)
        if principal is not None:
            return principal
        now = utcnow()
        with session(engine) as sess:
            found = _lookup(sess, token, now)
        if found is None:
            return None
        if writer is not None and _use_due(found[3], now):
            note_use(writer, found[2], now)
        self._store(_hash(token), _Entry(found[0], found[1], self.clock() + self.ttl, _entry_bytes(found[0])))
        return found[0]

    def _store(self, digest: str, entry: _Entry) -> None:
        if entry.bytes > self.max_bytes:
            return
        with self._lock:
            self._drop(digest)
            while self._entries and (
                len(self._entries) >= self.size or self.bytes + entry.bytes > self.max_bytes
            ):
                self._drop(next(iter(self._entries)))
            self._entries[digest] = entry
            self.bytes += entry.bytes

    def _drop(self, digest: str) -> None:
        entry = self._entries.pop(digest, None)
        if entry is not None:
            self.bytes -= entry.bytes

    def forget_user(self, user_id: int) -> None:
        """Drop every cached key of a user."""
        with self._lock:
            for digest, entry in list(self._entries.items()):
                if entry.principal.user_id == user_id:
                    self._drop(digest)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
            self.bytes = 0


# One per process: uvicorn workers each have their own, which is why revocations elsewhere take `ttl`.
principals = PrincipalCache()
