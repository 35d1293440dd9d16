"""Request bodies past a limit: refused with 413 before they are read whole, in the app's own error shape.

FastAPI's `max_body_size` answers a body whose declared length is too large in Starlette's plain text, even
past the app's error handlers; a client parsing `{"error", "detail"}` then breaks. This middleware refuses
such a body before routing (JSON, or the console's page), and a streamed one as it passes the limit (an
HTTPException the app's handlers answer).
"""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors


def too_large(max_bytes: int) -> HTTPException:
    """The 413 of a body over `max_bytes`."""
    size = f"{max_bytes // 2**20} MiB" if max_bytes % 2**20 == 0 else f"{max_bytes // 2**10} KiB"
    return HTTPException(413, f"the request body is over {size} ({max_bytes} bytes)")


def declared(scope: Scope) -> int | None:
    """The request's Content-Length, if it states a number."""
    value = Headers(scope=scope).get("content-length", "")
    return int(value) if value.isdigit() else None


async def read(request: Request, max_bytes: int) -> bytes:
    """The whole body of a route with a lower limit than the app's, refused (413) as soon as it passes it."""
    if (declared(request.scope) or 0) > max_bytes:
        raise too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise too_large(max_bytes)
    return bytes(body)


class BodyLimit:
    """ASGI middleware: at most `max_bytes` of body per request."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if (declared(scope) or 0) > self.max_bytes:
            response = errors.http_response(Request(scope, receive), too_large(self.max_bytes))
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise too_large(self.max_bytes)
            return message

        await self.app(scope, counted, send)
