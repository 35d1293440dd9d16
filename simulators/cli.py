"""`servicecast simulate`: a fleet live over MQTT or backfilled into the store, and C-MAPSS replay."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from fleet import audit, bootstrap
from fleet.settings import MqttEndpoint, Settings
from simulators import backfill as backfill_mod
from simulators import live
from simulators import machine_types as simulated_types
from simulators.config import FleetConfig
from simulators.engine import SimulationRun, simulate

PROG = "servicecast simulate"
simulate_app = typer.Typer(
    help="Simulate a fleet with known failures (live over MQTT or backfilled), or replay C-MAPSS.",
    no_args_is_help=True,
)

MqttUrl = Annotated[
    str | None,
    typer.Option("--mqtt-url", help="Broker URL (default: SERVICECAST_MQTT_URL).", show_default=False),
]
GroundTruth = Annotated[
    bool,
    typer.Option(help="Register the machines and store the ground truth in SERVICECAST_DATABASE_URL."),
]
AckTimeout = Annotated[
    float,
    typer.Option(
        "--ack-timeout",
        min=0.1,
        help="Seconds the broker may acknowledge nothing before publishing stops (exit 1).",
    ),
]
Speed = Annotated[
    float | None,
    typer.Option(help="Simulated seconds per wall second (1 = real time; 0 = as fast as acks come back)."),
]


def usage_error(message: str) -> SystemExit:
    """Print one line to stderr and return the exit (code 2) to raise."""
    return bootstrap.fail(message, prog=PROG)


def _broker_url(settings: Settings, mqtt_url: str | None) -> str:
    url = mqtt_url or (settings.mqtt_url.get_secret_value() if settings.mqtt_url else None)
    if not url:
        raise usage_error(
            "live mode needs a broker: set SERVICECAST_MQTT_URL or pass --mqtt-url (or use --backfill)"
        )
    try:
        MqttEndpoint(url)
    except ValueError as exc:
        raise usage_error(f"bad broker URL: {exc}") from None
    return url


def _ground_truth_store(settings: Settings, *, types: bool = False) -> str:
    """SERVICECAST_DATABASE_URL once it opens and is migrated (else one line, before publishing); `types`:
    with the simulated fleet's types applied as a backfill applies them (its labels name their parts)."""
    engine = bootstrap.ready_engine(settings)
    try:
        if types:
            typer.echo(simulated_types.apply_to_store(engine, audit.operator()))
    finally:
        engine.dispose()
    return settings.database_url


def _start(value: str | None, step_seconds: int) -> dict[str, datetime]:
    if value is None:
        return {}
    if value == "now":
        now = datetime.now(UTC).timestamp()
        return {"start": datetime.fromtimestamp(now - now % step_seconds, UTC)}
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise usage_error(f"--start {value!r} is not ISO 8601 (e.g. 2026-01-01T00:00Z) or 'now'") from None
    return {"start": ts if ts.tzinfo else ts.replace(tzinfo=UTC)}


@contextmanager
def _progress(total: int, what: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal; silent otherwise."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def _failures_line(run: SimulationRun) -> str:
    modes = Counter(run.failures["mode"])
    detail = ", ".join(f"{mode} {n}" for mode, n in modes.most_common())
    return (
        f"failures: {len(run.failures)}"
        + (f" ({detail})" if detail else "")
        + f"; maintenance: {len(run.maintenance)}"
    )


@simulate_app.command("fleet")
def fleet(
    machines: Annotated[int, typer.Option(help="Fleet size.")] = 30,
    days: Annotated[float, typer.Option(help="Simulated days.")] = 7.0,
    seed: Annotated[int, typer.Option(help="Same seed, same fleet, values and failures.")] = 0,
    speed: Speed = None,
    backfill: Annotated[
        bool, typer.Option("--backfill", help="Write the history straight into SERVICECAST_DATABASE_URL.")
    ] = False,
    failure_rate: Annotated[float, typer.Option(help="Failure initiations per machine-year.")] = 6.0,
    fault_rate: Annotated[float, typer.Option(help="Sensor-fault episodes per machine-day.")] = 0.05,
    bad_payload_rate: Annotated[float, typer.Option(help="Share of messages that are invalid.")] = 0.001,
    step_seconds: Annotated[int, typer.Option(help="Seconds between a machine's messages.")] = 60,
    start: Annotated[
        str | None, typer.Option(help="First timestamp, ISO 8601 or 'now' (default 2026-01-01T00:00Z).")
    ] = None,
    mqtt_url: MqttUrl = None,
    client_id: Annotated[str, typer.Option(help="MQTT client id of the publisher.")] = "",
    ground_truth: GroundTruth = True,
    ack_timeout: AckTimeout = live.WINDOW_TIMEOUT_S,
) -> None:
    """Simulate MACHINES machines over DAYS days: publish live over MQTT, or --backfill the database."""
    if backfill and speed is not None:
        raise usage_error("--speed applies to live publishing; leave it out with --backfill")
    settings = bootstrap.load_settings(prog=PROG)
    url = None if backfill else _broker_url(settings, mqtt_url)
    try:
        config = FleetConfig(
            machines=machines,
            days=days,
            seed=seed,
            step_seconds=step_seconds,
            **_start(start, step_seconds),
            failure_rate=failure_rate,
            fault_rate=fault_rate,
            bad_payload_rate=bad_payload_rate,
        )
    except ValueError as exc:
        raise usage_error(str(exc)) from None
    run = simulate(config)
    typer.echo(f"fleet: {machines} machines, {config.steps:,} steps of {step_seconds} s, seed {seed}")
    if backfill:
        try:  # from opening the database on: a start that waits (migrating, under load) is Ctrl-C'd too
            with (
                bootstrap.engine_for(settings, process="simulate fleet") as engine,
                _progress(machines * config.steps, "backfill") as progress,
            ):
                typer.echo(simulated_types.apply_to_store(engine, audit.operator()))
                report = backfill_mod.backfill(run, engine, progress=progress)
        except KeyboardInterrupt:
            raise bootstrap.fail(
                "interrupted: every chunk written so far is stored whole; the same command again "
                "stores only the rest",
                code=bootstrap.EXIT_INTERRUPTED,
                prog=PROG,
            ) from None
        typer.echo(
            f"backfill: {report.rows:,} rows ({report.readings:,} readings), {report.stored:,} new, "
            f"in {report.seconds:.1f} s: {report.rows_per_s:,.0f} rows/s, "
            f"{report.readings_per_s:,.0f} readings/s"
        )
    else:
        database_url = _ground_truth_store(settings, types=True) if ground_truth else None
        total = machines * config.steps
        with _progress(total, "publish") as progress:
            try:
                report = live.publish_run(
                    run,
                    url=url,
                    speed=speed,
                    database_url=database_url,
                    client_id=client_id,
                    protocol=settings.mqtt_protocol,
                    progress=progress,
                    ack_timeout_s=ack_timeout,
                )
            except (ConnectionError, TimeoutError) as exc:  # refused, or stopped acknowledging
                raise bootstrap.fail(exc, code=bootstrap.EXIT_ERROR, prog=PROG) from None
            except KeyboardInterrupt as exc:
                raise _interrupted(exc) from None
        _echo_publish(report)
    typer.echo(_failures_line(run) + (f"; ground truth: run {report.run_id}" if report.run_id else ""))


def _interrupted(exc: KeyboardInterrupt) -> SystemExit:
    """Ctrl-C in live mode: one line with what was sent and acknowledged; the exit (130) to raise."""
    report = exc.report if isinstance(exc, live.PublishInterrupted) else None
    if report is None:
        message = "interrupted before publishing: nothing sent"
    else:
        message = (
            f"interrupted: {report.sent:,} messages sent, {report.acked:,} acknowledged, "
            f"{report.sent - report.acked:,} pending (not acknowledged, may be lost)"
        )
        if report.run_id:
            message += f"; ground truth: run {report.run_id}"
    return bootstrap.fail(message, code=bootstrap.EXIT_INTERRUPTED, prog=PROG)


def _echo_publish(report: live.PublishReport) -> None:
    typer.echo(
        f"published: {report.valid:,} valid + {report.invalid:,} invalid messages, {report.acked:,} acked, "
        f"in {report.seconds:.1f} s ({report.acked_per_s:,.0f} msg/s)"
    )
    if report.acked < report.sent:
        message = f"{report.sent - report.acked} messages not acknowledged"
        raise bootstrap.fail(message, code=bootstrap.EXIT_ERROR, prog=PROG)


@simulate_app.command("replay-cmapss")
def replay_cmapss(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A C-MAPSS train/test file.")],
    speed: Speed = None,
    tenant: Annotated[str, typer.Option(help="Tenant of the engines in the topics.")] = "cmapss",
    cycle_seconds: Annotated[float, typer.Option(help="Simulated seconds per cycle.")] = 3600.0,
    units: Annotated[int | None, typer.Option(help="Only the first N units.")] = None,
    mqtt_url: MqttUrl = None,
    client_id: Annotated[str, typer.Option(help="MQTT client id of the publisher.")] = "",
    ground_truth: GroundTruth = True,
    ack_timeout: AckTimeout = live.WINDOW_TIMEOUT_S,
) -> None:
    """Publish FILE: each unit a machine (engine-001, …), each cycle a message; it fails at its last cycle."""
    settings = bootstrap.load_settings(prog=PROG)
    url = _broker_url(settings, mqtt_url)
    try:
        report = live.replay_cmapss(
            file,
            url=url,
            tenant=tenant,
            speed=speed,
            cycle_seconds=cycle_seconds,
            units=units,
            database_url=_ground_truth_store(settings) if ground_truth else None,
            client_id=client_id,
            protocol=settings.mqtt_protocol,
            ack_timeout_s=ack_timeout,
        )
    except ValueError as exc:
        raise usage_error(str(exc)) from None
    except (ConnectionError, TimeoutError) as exc:
        raise bootstrap.fail(exc, code=bootstrap.EXIT_ERROR, prog=PROG) from None
    except KeyboardInterrupt as exc:
        raise _interrupted(exc) from None
    _echo_publish(report)
    if report.run_id:
        typer.echo(f"ground truth: run {report.run_id}")
