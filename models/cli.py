"""Command-line entry points of the models package; `register(app)` mounts them on the servicecast CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine

from fleet import audit, bootstrap, errors
from fleet.display import count
from models import shards


def _engine() -> Engine:
    return bootstrap.ready_engine(bootstrap.load_settings())


def train(
    machine_type: Annotated[str | None, typer.Option("--machine-type", help="only this type")] = None,
    no_activate: Annotated[bool, typer.Option("--no-activate", help="register without promoting")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="activate even if worse than the active version (audited)")
    ] = False,
    event_features: Annotated[
        bool | None,
        typer.Option(
            "--event-features/--no-event-features",
            help="add the codes and components the type declares as features (events, history); "
            "default: the type's training settings (events), else off",
            show_default=False,
        ),
    ] = None,
    finding_memory: Annotated[
        bool,
        typer.Option("--finding-memory", help="remember each machine's no-fault findings as features"),
    ] = False,
) -> None:
    """Train one model per machine type; activate it only if it beats the active one on a held-out window.

    Each type trains with its types file's `training:` settings; a key it leaves out takes the fleet-wide
    setting (SERVICECAST_MODEL_PRECISION_TARGET, SERVICECAST_MODEL_MAX_FALSE_ALARMS) or default.
    """
    from fleet import machine_types
    from models import versions
    from models.training import train_from_store

    settings = bootstrap.load_settings()
    engine = bootstrap.serving_engine(settings, process="train")
    try:
        report = train_from_store(
            engine,
            machine_type=machine_type,
            activate=not no_activate,
            force=force,
            by=audit.operator(),
            precision_target=settings.model_precision_target,
            max_false_alarms=settings.model_max_false_alarms,
            holdout_days=settings.train_holdout_days,
            min_failures=settings.cold_start_min_failures,
            max_type_rows=settings.train_max_rows,
            events=event_features,
            finding_memory=finding_memory,
        )
    except errors.ArchiveUnreadable as exc:  # training reads the archived months of its window
        raise bootstrap.fail(exc.one_line(), code=bootstrap.EXIT_ERROR) from None
    typer.echo(report.pooling())
    for mtype in sorted(report.notes.keys() - report.versions.keys()):
        typer.echo(f"{mtype}: not trained ({report.notes[mtype]})", err=True)
    if not report.versions:
        typer.echo("nothing to train: no pooled telemetry for that machine type", err=True)
        raise typer.Exit(1)
    live = versions.active_versions(engine)
    with engine.connect() as conn:
        undefined = set(report.cold_start) - machine_types.defined(conn, list(report.cold_start))
    for mtype, version in report.versions.items():
        typer.echo(f"{mtype}: {version}  {_verdict(mtype, report, live.get(mtype), mtype in undefined)}")
    for mtype, read in sorted(report.maintenance_labels.items()):
        if read:
            typer.echo(
                f"{mtype}: read {count(read, 'maintenance label')} (visits that found no wear): they change "
                "no row's label (docs/models.md)"
            )
    typer.echo(f"peak memory {report.peak_rss_mib:.0f} MiB")


def _verdict(mtype: str, report, live: str | None, undefined: bool) -> str:  # noqa: ANN001
    """What became of a type's new version (`live`: the type's active one now; `undefined`: no types file
    defines the type), and why."""
    from models import champion  # with pandas, loaded by training already

    state = "active" if live == report.versions[mtype] else f"not activated, active: {live or 'none'}"
    if mtype in report.cold_start and undefined:
        limits = f"no OEM limits: machine type {mtype!r} is not defined (servicecast types apply FILE)"
        return f"cold start ({report.notes[mtype]}): trend and anomaly alerts, {limits}; {state}"
    if mtype in report.cold_start:
        return f"cold start ({report.notes[mtype]}): OEM limits, trend and anomaly alerts; {state}"
    c = report.comparisons[mtype]
    if c is None:
        return f"{state}; no window held out (SERVICECAST_TRAIN_HOLDOUT_DAYS=0): not compared"
    champ = c["champion"]
    figures = f"{c['metric']} {c['candidate']['f1']:.3f}"
    if champ is not None:
        figures += f" vs {champ['f1']:.3f} of {champ['version']}"
    figures += f" on {c['window']['start'][:10]}..{c['window']['end'][:10]}"
    if (unjudged := champion.unjudged(c)) is not None:
        figures += f"; {unjudged}"
    why = "activated by --force" if c["forced"] else c["reason"]
    hint = "" if c["at_least_as_good"] or c["forced"] else " (--force activates it)"
    return f"{state}; {why}{hint} ({figures})"


def _shard(text: str | None) -> shards.Shard:
    """The shard `--shard` names, all machines without it; a bad one is a usage error."""
    if text is None:
        return shards.ALL
    try:
        return shards.Shard.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def score(
    once: Annotated[bool, typer.Option("--once", help="one pass, then exit")] = False,
    interval: Annotated[float, typer.Option(help="seconds between passes")] = 30.0,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="I/N",
            help="score only shard I of N (0 <= I < N): run N scorers, one per shard; one policy process",
        ),
    ] = None,
) -> None:
    """Rescore machines with new telemetry using the active model of their type."""
    part = _shard(shard)
    engine = bootstrap.serving_engine(bootstrap.load_settings(), process="score")
    from models import scoring  # after the check: a refused start does not pay for pandas and scikit-learn

    if once:
        report = scoring.score_once(engine=engine, shard=part)
        typer.echo(
            f"shard {part}: scored {report.machines} machines in {report.seconds:.1f} s "
            f"({dict(report.statuses)}); {report.skipped()}"
        )
        return
    scoring.run(engine=engine, interval_s=interval, shard=part)


models_app = typer.Typer(help="Registered model versions.", no_args_is_help=True)


@models_app.command("list")
def list_models(
    machine_type: Annotated[
        str | None, typer.Option("--machine-type", help="Only this machine type.")
    ] = None,
) -> None:
    """Registered versions, newest first; * marks the active one of each type."""
    from models import versions

    for v in versions.list_versions(_engine(), machine_type):
        mark = "*" if v.active else " "
        typer.echo(f"{mark} {v.version}  {v.machine_type}  {v.kind}  threshold={v.threshold}  {v.created_at}")


@models_app.command("promote")
def promote(
    version: Annotated[str, typer.Argument(metavar="VERSION", help="A version as `models list` names it.")],
) -> None:
    """Make a version the active one of its machine type."""
    from models import versions

    try:
        info = versions.promote(_engine(), version, by=audit.operator())
    except versions.ModelNotFound as exc:
        raise bootstrap.fail(exc, code=bootstrap.EXIT_ERROR) from None
    typer.echo(f"{info.machine_type}: {info.version} active")


@models_app.command("rollback")
def rollback(
    machine_type: Annotated[
        str, typer.Argument(metavar="TYPE", help="The machine type, e.g. centrifugal_pump.")
    ],
) -> None:
    """Re-activate the version of TYPE promoted before the current one."""
    from models import versions

    try:
        info = versions.rollback(_engine(), machine_type, by=audit.operator())
    except versions.ModelNotFound as exc:
        raise bootstrap.fail(exc, code=bootstrap.EXIT_ERROR) from None
    typer.echo(f"{info.machine_type}: {info.version} active")


def _readable(flag: str, help_text: str) -> typer.models.OptionInfo:
    return typer.Option(flag, help=help_text, exists=True, dir_okay=False, readable=True)


def evaluate_cmapss(
    train_path: Annotated[Path, _readable("--train", "C-MAPSS training file")],
    test_path: Annotated[Path, _readable("--test", "C-MAPSS test file")],
    rul_path: Annotated[Path, _readable("--rul", "true RUL file of the test units")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Evaluate the C-MAPSS RUL model on a train/test/RUL triple."""
    from models.cmapss import evaluate_cmapss as run

    try:
        result = run(train_path, test_path, rul_path)
    except ValueError as exc:  # each reader names its file and what is wrong in it
        raise bootstrap.fail(exc) from None
    if as_json:
        typer.echo(json.dumps(result, default=float))
        return
    for key, value in result.items():
        typer.echo(f"{key:20} {value}")


def register(app: typer.Typer) -> None:
    """Add train, score, models list|promote|rollback and evaluate-cmapss to `app`."""
    app.command("train")(train)
    app.command("score")(score)
    app.add_typer(models_app, name="models")
    app.command("evaluate-cmapss")(evaluate_cmapss)
