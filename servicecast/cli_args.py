"""Arguments several `servicecast` commands take, each with its one help text."""

from __future__ import annotations

from typing import Annotated

import typer

Tenant = Annotated[str, typer.Argument(help="The customer's tenant id (its part of the MQTT topics).")]
Machine = Annotated[str, typer.Argument(help="The machine's id in its MQTT topics.")]
UserName = Annotated[str, typer.Argument(help="The user's name, unique among users.")]
