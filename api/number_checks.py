"""Number checks pydantic alone lets through (true read as 1, "12" as 12), for the API's bodies and for the
files an admin adds; without FastAPI, so that a command reading the catalog file does not import it."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field


def not_true_or_false(value: object) -> object:
    """Refuse JSON true/false as an amount (a bool is an int to pydantic: `true` would read as 1.0)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


def _whole_number(value: object) -> object:
    """Refuse true/false and text as a file's whole number: pydantic would read `true` and "1" as 1. A number
    without a fraction (2.0) is taken as 2: the catalog file's version and expiry days are no ids."""
    if isinstance(value, bool | str):
        raise ValueError('must be a whole number (as 42, not true, false or "42")')
    return value


# Numbers in a file an admin adds (the catalog's YAML): the checks of the API's money, and text ("12", "0.8")
# and .inf/.nan are refused too, never read as 12 or an endless figure. Bounds are the using field's own.
FileWholeNumber = Annotated[int, BeforeValidator(_whole_number)]
FileNumber = Annotated[float, Field(strict=True, allow_inf_nan=False), BeforeValidator(not_true_or_false)]
