"""HTTP routes, thin: they check rights and scope and call the service modules."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import Column, Table


def columns(out: type[BaseModel], table: Table) -> list[Column]:
    """The table's columns that the response body shows, for Core selects that skip the ORM."""
    return [table.c[name] for name in out.model_fields if name in table.c]
