"""`servicecast sparkplug`: run the Sparkplug B primary host until SIGTERM (also `python -m` this module)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleet import credentials, errors, tables
from fleet.bootstrap import fail, load_settings, serving_engine


def sparkplug(
    map_file: Annotated[Path, typer.Option("--map", help="The Sparkplug map (YAML): nodes → machines.")],
    host_id: Annotated[
        str, typer.Option(help="Sparkplug host id (no / + # : or spaces): STATE is spBv1.0/STATE/{host id}.")
    ] = "servicecast",
    client_id: Annotated[str | None, typer.Option(help="MQTT client id (default from the host id).")] = None,
) -> None:
    """Subscribe to spBv1.0/#, publish STATE, store births and data through the ingest pipeline."""
    from ingest.sparkplug.host import SparkplugHost
    from ingest.sparkplug.mapping import MapError, Mapping

    try:
        credentials.sparkplug_id(host_id)  # the rule its broker credential follows
    except errors.InvalidInput as exc:
        raise fail(f"invalid --host-id: {exc}") from None
    longest = tables.SparkplugNode.host_id.type.length  # the key of the host's node states
    if len(host_id) > longest:
        raise fail(f"invalid --host-id: at most {longest} characters, got {len(host_id)}")
    settings = load_settings()
    endpoint = settings.mqtt_endpoint()
    if endpoint is None:
        raise fail("invalid setting SERVICECAST_MQTT_URL: required for the Sparkplug host")
    try:
        mapping = Mapping.load(map_file)
    except MapError as exc:
        raise fail(str(exc)) from exc
    host = SparkplugHost(
        settings=settings,
        engine=serving_engine(settings, process="sparkplug"),
        endpoint=endpoint,
        mapping=mapping,
        host_id=host_id,
        client_id=client_id,
    )
    raise typer.Exit(host.run())


if __name__ == "__main__":
    typer.run(sparkplug)
