"""FastAPI dependencies as `Annotated` aliases: the session, the caller, and role checks."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, CursorResult, Engine, Executable
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from api import auth, json_body
from api.errors import Forbidden, Unauthorized
from fleet.db import for_writing, session
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


def has_right(who: auth.Principal | None, right: str) -> bool:
    """Whether the caller's role has `right`; nobody signed in has none."""
    return who is not None and who.role in RIGHTS[right]


bearer = HTTPBearer(auto_error=False, description="An API key from `servicecast users add`")


def get_session(request: Request) -> Iterator[Session]:
    """A session per request: committed when the handler returns, rolled back when it raises.

    A write (any method but GET) reads its object first: it takes SQLite's write lock as it begins
    (`for_writing`), as the console's form posts do.
    """
    engine = request.app.state.engine
    with session(engine if request.method == "GET" else for_writing(engine)) as sess:
        yield sess


class ReadSession(Session):
    """A session on the read-only engine: closing it early never drops a write."""


async def get_reader(request: Request) -> AsyncIterator[Session]:
    """A session on the read-only engine, for a plain `def` read route (run in the thread pool).

    Async, as it does no I/O: a session connects at its first query, which runs in the route's thread,
    and closing it returns the connection without a rollback (the read-only engine is in autocommit
    and resets nothing on return). A sync dependency would cost two more thread-pool hops.
    """
    sess = ReadSession(request.app.state.reader)
    try:
        yield sess
    finally:
        sess.close()


class ReadConnection:
    """A read-only connection checked out at its first query, not when the dependency is solved.

    The checkout (a ping on PostgreSQL) then happens in the route's thread, never on the event loop,
    and no connection is held while the caller's key is looked up.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine, self.dialect = engine, engine.dialect
        self._conn: Connection | None = None

    def execute(self, statement: Executable, parameters: dict | None = None) -> CursorResult:
        """Run a statement on the connection, checking one out first if needed."""
        return self.connection().execute(statement, parameters)

    def connection(self) -> Connection:
        """The connection itself, for the store's functions; checked out first if needed."""
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    def close(self) -> None:
        """Give the connection back to the pool, if one was taken (no I/O: see `get_reader`)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


async def get_connection(request: Request) -> AsyncIterator[ReadConnection]:
    """A read-only connection for a route that reads with Core only (cheaper than a session)."""
    with contextlib.closing(ReadConnection(request.app.state.reader)) as conn:
        yield conn


def releasing(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The endpoint, giving back every read session or connection passed to it by name when it returns."""

    @functools.wraps(endpoint)
    def route(*args: Any, **kwargs: Any) -> Any:
        try:
            return endpoint(*args, **kwargs)
        finally:
            for value in kwargs.values():
                if isinstance(value, ReadSession | ReadConnection):
                    value.close()

    return route


class ReadRoute(APIRoute):
    """A route whose sync endpoint gives its read connection back before it leaves its thread.

    FastAPI validates a sync route's answer in one more thread-pool hop and runs dependency exits only
    after it: a connection still held then would wait for a thread while every thread waits for a
    connection, and a burst of requests larger than the read pool would stall for good.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = releasing(endpoint)
        super().__init__(path, endpoint, **kwargs)


async def telemetry_connection(request: Request) -> AsyncIterator[ReadConnection]:
    """A read connection under one of the worker's SERVICECAST_API_TELEMETRY_CONCURRENCY telemetry slots.

    The slot is awaited on the loop (waiting holds no thread) and kept until the answer is written. A
    long read holds the GIL for much of its Python part: several at once keep the event loop, and with
    it every other request of the worker, waiting for it. One dependency, not two: each costs the
    telemetry route's every request its own resolution.
    """
    async with request.app.state.telemetry_reads:
        with contextlib.closing(ReadConnection(request.app.state.reader)) as conn:
            yield conn


async def app_settings(request: Request) -> Settings:
    """The settings the app was built with (async: a sync dependency costs a thread-pool hop a request)."""
    return request.app.state.settings


# scope="function": the commit happens before the response is sent, so a client never hears "done"
# about a write that then fails to commit, nor reads its own write back before it is committed.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ReaderDep = Annotated[Session, Depends(get_reader, scope="function")]
ConnectionDep = Annotated[ReadConnection, Depends(get_connection, scope="function")]
SettingsDep = Annotated[Settings, Depends(app_settings)]
TelemetryConnection = Annotated[ReadConnection, Depends(telemetry_connection, scope="function")]


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
_lookups: dict[tuple[Engine, str], asyncio.Future[auth.Principal | None]] = {}


async def _authenticate_once(
    engine: Engine, token: str, writer: Engine | None = None
) -> auth.Principal | None:
    """The key looked up in a thread once, however many requests with it miss the cache together.

    When a busy client's cached key goes stale, all its requests in flight miss at the same moment;
    without this, each would take a thread and a pooled connection for the same lookup.
    """
    pending = _lookups.get((engine, token))
    if pending is None:
        lookup = run_in_threadpool(auth.principals.authenticate, engine, token, writer)
        pending = asyncio.ensure_future(lookup)
        _lookups[engine, token] = pending
        pending.add_done_callback(lambda _: _lookups.pop((engine, token), None))
    # shield: a request cancelled while waiting must not cancel the lookup the others wait for
    return await asyncio.shield(pending)


async def get_principal(request: Request, credentials: Credentials) -> auth.Principal:
    """The caller behind the bearer token; 401 for a missing, garbage, expired or revoked key, or for two."""
    if len(request.headers.getlist("authorization")) > 1:  # we read the first, a proxy may read the last
        raise Unauthorized("Authorization header given more than once; send one key")
    if credentials is None:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    token = credentials.credentials
    # A key seen in the last few seconds costs no database round trip and no thread-pool hop.
    principal = auth.principals.get(token)
    if principal is None:
        principal = await _authenticate_once(request.app.state.reader, token, request.app.state.engine)
    if principal is None:
        raise Unauthorized("the API key is unknown, expired or revoked")
    return principal


PrincipalDep = Annotated[auth.Principal, Depends(get_principal)]


def allowed(right: str) -> Callable[[auth.Principal], Awaitable[auth.Principal]]:
    """A dependency that lets the caller through only if its role has `right` (403 otherwise)."""

    # Async because it does no I/O: a sync dependency would cost a thread-pool hop per request. It calls
    # get_principal itself rather than depending on it: each level of dependencies costs time per request.
    async def check(request: Request, credentials: Credentials) -> auth.Principal:
        principal = await get_principal(request, credentials)
        if not has_right(principal, right):
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


NUL = "\x00"
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


async def refuse_nul(request: Request) -> None:
    """Refuse (422) a NUL character in the path, the query or a JSON or form body, on every route.

    PostgreSQL cannot store one in text (a 500 there), SQLite would keep it for pages, mails and CSVs.
    """
    where = [("path",)] if NUL in request.scope["path"] else []
    if b"%00" in request.scope["query_string"]:
        where += [("query", k) for k, v in request.query_params.multi_items() if NUL in k + v]
    if request.method not in ("GET", "HEAD"):
        where += await _body_nul(request)
    if where:
        problem = {"type": "value_error", "loc": where[0], "msg": "a NUL character is not allowed in text"}
        raise RequestValidationError([problem])


async def refuse_repeated_query(request: Request) -> None:
    """Refuse (422) a query parameter given more than once, on every route: FastAPI takes the last, so a
    list sent as `customer_id=1&customer_id=2` was answered for one customer as if for both."""
    if name := repeated_query(request):
        problem = {"type": "value_error", "loc": ("query", name), "msg": "given more than once; send it once"}
        raise RequestValidationError([problem])


def repeated_query(request: Request) -> str | None:
    """The first query parameter the request gives more than once, or None."""
    if b"&" not in request.scope["query_string"]:
        return None
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name in seen:
            return name
        seen.add(name)
    return None


async def _body_nul(request: Request) -> list[tuple]:
    kind = request.headers.get("content-type", "")
    if kind.startswith(FORMS):
        try:
            form = await request.form()  # the one FastAPI parsed, kept on the request
        except HTTPException:
            # No form in it (a signed CRM outcome called multipart): a route that reads a form says so, one
            # that reads its body raw (`crm.receive_outcome`) takes the bytes.
            return []
        return [("body", k) for k, v in form.multi_items() if NUL in k or (isinstance(v, str) and NUL in v)]
    if "json" not in kind or not await request.body():
        return []
    try:
        found = json_body.loads(await request.body())
    except json_body.NotJson:
        return []  # the route's own validation says so, or it reads no body
    except json_body.BadJson as exc:  # read one way here, another elsewhere: refused
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": str(exc)}]) from None
    return [("body", *loc) for loc in _nul_paths(found)]


def _nul_paths(value: object) -> Iterator[tuple]:
    """Where in parsed JSON a key or a string holds a NUL (a loop: the JSON may be nested deeply)."""
    stack: list[tuple[tuple, object]] = [((), value)]
    while stack:
        loc, item = stack.pop()
        if isinstance(item, str) and NUL in item:
            yield loc
        elif isinstance(item, dict):
            for key, inner in item.items():
                if NUL in key:
                    yield (*loc, key)
                stack.append(((*loc, key), inner))
        elif isinstance(item, list):
            stack.extend(((*loc, i), inner) for i, inner in enumerate(item))
