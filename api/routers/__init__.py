"""HTTP routes, thin: they check rights and scope and call the service modules."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel
from sqlalchemy import Column, Table


def columns(out: type[BaseModel], table: Table) -> list[Column]:
    """The table's columns that the response body shows, for Core selects that skip the ORM."""
    return [table.c[name] for name in out.model_fields if name in table.c]


def json_response(out: type[BaseModel], value: Any) -> Response:
    """The body `response_model=out` would write, written in the route's thread.

    FastAPI validates a plain `def` route's answer in one more thread-pool hop; a Response it sends as
    it is. The same pydantic dump as its own (`by_alias`), so the JSON is byte for byte the same.
    """
    return Response(out.model_validate(value).model_dump_json(by_alias=True), media_type="application/json")
