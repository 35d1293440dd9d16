"""Technicians whose repairs change the simulated machine: the findings review of a repair world.

As `benchmarks.findings.review`, an earlier model (or, with `review_every`, one retrained every so many
days with the findings recorded by then) opens alerts on the review window through the live policy's
alert step, and a technician visits each alert `visit_hours` after it opened if its horizon ends before
`split`. Here the visit changes the world: wear under way is replaced (the simulator's timeline ends the
episode there, the machine stops for maintenance and does not fail; `SimulationRun.with_visits`) and the
alert is resolved "replaced before failure" naming the mode; nothing under way and no failure or found
wear within the horizon: "no fault found"; other right alerts stay with the simulator's labels. The
simulator's labels never hold these repairs: only the findings report them.

The window goes in rounds no longer than `visit_hours`, so an alert opened in a round is visited after
it; after each round the machines visited are simulated again from the visit on, and the next round
scores the new world. Findings resolve in time order among the alerting predictions.

With `capacity` (visits per machine-month) the field-service team, not the review model's threshold,
sets the review's size: each round a type's fleet gets the visits its machine-months of that round add
up to (whole visits, counted from the window's start; a slot not used is lost), and they go to the
machines whose risk peaked highest in the round, among peaks at or above `CANDIDATE_RISK` and machines
without a visit still to come. Their alerts open through the policy at the lowest of those peaks, at the
first reading that reaches it (the dispatcher ranks the round's peaks once the round is over: a look
within the round, inside the training window only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from api import alerts as alert_workflow
from benchmarks import findings
from fleet.db import session
from fleet.tables import Alert, Prediction
from models import episodes, versions
from models.training import ground_truth_by_id, train_type
from simulators.registration import register_machines

REPLACED, NO_FAULT = "replaced_before_failure", "no_fault_found"
# The lowest notch of the trainer's threshold grid (`training.choose_threshold`): no threshold it can
# choose alerts on a lower risk, so with a capacity no visit goes to one.
CANDIDATE_RISK = 0.10


@dataclass(frozen=True)
class RepairFindings:
    """The findings of a repair-world review as training reads them, the world they leave, and counts."""

    no_faults: pd.DataFrame  # machine, ts, machine_type
    replaced: pd.DataFrame  # machine, ts, kind, found_mode, machine_type (as training reads maintenance)
    world: object  # simulators.engine.SimulationRun with every visit's repair
    panel: pd.DataFrame  # the world's telemetry
    alerts: int  # alerts opened in the reviewed period
    visited: int  # of them, alerts whose horizon ended before the split
    review_models: int  # models trained per machine type to open the reviewed alerts
    rounds: int


@dataclass(frozen=True)
class _Visit:
    at: pd.Timestamp
    alert_id: int
    finding: str
    mode: str | None


def review(
    run,  # noqa: ANN001 - simulators.engine.SimulationRun
    panel: pd.DataFrame,
    *,
    split: pd.Timestamp,
    engine: Engine | None = None,
    **options: object,
) -> RepairFindings:
    """Findings on the alerts of the `review_days` before `split`, in a world the repairs change.

    `panel` is `run.telemetry()` (left as it is); `options` are `findings.review`'s review_days,
    visit_hours and review_every, the team's `capacity` (visits per machine-month, else every alert at
    the review model's threshold is visited), and the model's parameters. The alerts and findings live
    in `engine`'s store (migrated, without the run's machines), else in a temporary SQLite file.
    """
    return findings.in_store(engine, _review, run, panel.copy(), split=split, **options)


def _review(  # noqa: ANN001
    engine: Engine,
    world,
    panel: pd.DataFrame,
    *,
    split,
    review_days: float = 60.0,
    visit_hours: float = 24.0,
    review_every: float | None = None,
    capacity: float | None = None,
    **params,
) -> RepairFindings:
    start = split - pd.Timedelta(days=review_days)
    every = split - start if review_every is None else pd.Timedelta(days=review_every)
    length = min(pd.Timedelta(hours=visit_hours), every)
    horizon = pd.Timedelta(hours=float(params.get("horizon_hours", 168.0)))
    ids = register_machines(engine=engine, machines=world.machines)
    names = {m: str(code) for (_, code), (_, m) in ids.items()}
    before = (pd.to_datetime(panel["ts"], utc=True) < split).to_numpy()
    rows = {t: np.flatnonzero(before & (panel["machine_type"] == t).to_numpy()) for t in _types(panel)}
    visits: dict[str, list[pd.Timestamp]] = {}
    pending: list[_Visit] = []
    models: dict = {}
    visited, trainings, rounds, t, retrain = 0, 0, 0, start, start
    while t < split:
        end, rounds = min(t + length, split), rounds + 1
        if t >= retrain:
            # Trained as the product would: on the world so far, with the findings recorded before t.
            models = _train(engine, world, panel, rows, names, t, **params)
            trainings, retrain = trainings + 1, t + every
        cutoffs = {}
        for model, version, part, risk in models.values():
            cutoffs[version] = model.threshold_
            if capacity is not None:
                booked = {m for m, at in visits.items() if max(at) >= t}
                risk, cutoffs[version] = _dispatch(
                    part, risk, t, end, start=start, capacity=capacity, booked=booked
                )
            findings.write_predictions(engine, version, model, part, risk, ids, t, end, cutoffs[version])
        _apply(engine, cutoffs, pending, t, end)
        opened = _opened(engine, names, t, end, split=split, horizon=horizon)
        visited += len(opened)
        for machine, _, started in opened:
            visits.setdefault(machine, []).append(started + pd.Timedelta(hours=visit_hours))
        if opened:
            world, due, changed = _revisit(
                world, panel, visits, opened, visit_hours=visit_hours, horizon=horizon
            )
            models = _rescore(models, panel, rows, changed)
            pending = sorted([*pending, *due], key=lambda v: v.at)
        t = end
    _apply(engine, {}, pending, split, pd.Timestamp.max.tz_localize("UTC"))
    with session(engine) as sess:
        opened = len(sess.scalars(select(Alert.id)).all())
    no_faults, replaced = _findings(engine, names)
    return RepairFindings(no_faults, replaced, world, panel, opened, visited, trainings, rounds)


def _types(panel: pd.DataFrame) -> list[str]:
    return sorted(str(t) for t in panel["machine_type"].unique())


def _utc(value: object) -> pd.Timestamp:
    return pd.to_datetime(value, utc=True)


def _train(engine: Engine, world, panel: pd.DataFrame, rows: dict, names: dict, t, **params) -> dict:  # noqa: ANN001
    """Per type: a model trained on the rows before t with the labels and findings known by then."""
    no_faults, replaced = _findings(engine, names)
    out = {}
    for mtype, at in rows.items():
        part = panel.iloc[at].reset_index(drop=True)
        nf = no_faults[no_faults["machine_type"] == mtype]
        maint = world.maintenance[world.maintenance["machine_type"] == mtype]
        maint = pd.concat([maint, replaced[replaced["machine_type"] == mtype]], ignore_index=True)
        f_type = world.failures[world.failures["machine_type"] == mtype]
        model, metrics = train_type(part, f_type, maint, until=t, no_faults=nf, **params)
        metrics["no_faults"] = int((_utc(nf["ts"]) < t).sum())
        version = versions.register(
            engine, model=model, machine_type=mtype, train_end=t.to_pydatetime(), metrics=metrics
        )
        out[mtype] = (model, version, part, model.risk_rows(part)[0])
    return out


def slots(machines: int, capacity: float, start: pd.Timestamp, t: pd.Timestamp, end: pd.Timestamp) -> int:
    """The whole visits `machines` machines get in [t, end) at `capacity` a machine-month, from `start` on."""

    def used(at: pd.Timestamp) -> int:
        return int(np.floor(capacity * machines * episodes.as_months((at - start).total_seconds()) + 1e-9))

    return used(end) - used(t)


def _dispatch(  # noqa: ANN001
    part: pd.DataFrame, risk: np.ndarray, t, end, *, start, capacity: float, booked: set
) -> tuple:
    """The round's visits: `risk` kept only on the machines that get one, and the lowest of their peaks.

    Machines rank by their peak risk in [t, end), ties by the first time they reached it; a machine
    `booked` (its visit still to come) gets none. The cutoff is inf when no machine gets a visit.
    """
    ts = pd.to_datetime(part["ts"], utc=True)
    # Machines as integer codes: sorting and matching their names row by row was most of a round's CPU.
    codes, names = pd.factorize(part["machine"])
    names = np.asarray(names).astype(str)
    inside = ((ts >= t) & (ts < end)).to_numpy() & ~np.isnan(risk) & (risk >= CANDIDATE_RISK)
    inside &= ~np.isin(codes, np.flatnonzero(np.isin(names, list(booked))))
    rows = pd.DataFrame({"machine": codes[inside], "risk": risk[inside], "ts": ts[inside].to_numpy()})
    peaks = rows.sort_values(["risk", "ts"], ascending=[False, True], kind="mergesort")
    peaks = peaks.drop_duplicates("machine")
    n = slots(len(names), capacity, start, t, end)
    chosen = peaks.head(n)
    if not len(chosen):
        return np.full_like(risk, np.nan), float("inf")
    kept = np.where(np.isin(codes, chosen["machine"].to_numpy()), risk, np.nan)
    return kept, float(chosen["risk"].min())


def _apply(engine: Engine, thresholds: dict, pending: list[_Visit], t, end) -> None:  # noqa: ANN001
    """The policy's alert step on the predictions in [t, end), and the visits due by then, in time order."""
    with session(engine) as sess:
        predictions = []
        if thresholds:
            predictions = sess.scalars(
                select(Prediction)
                .where(Prediction.model_version.in_(list(thresholds)))
                .where(Prediction.ts >= t.to_pydatetime(), Prediction.ts < end.to_pydatetime())
                .order_by(Prediction.ts, Prediction.id)
            ).all()
        book = alert_workflow.AlertBook(sess)
        for prediction in predictions:
            while pending and pending[0].at <= _utc(prediction.ts):
                _resolve(sess, pending.pop(0))
            threshold = thresholds[prediction.model_version]
            book.apply(prediction, prediction.ts, threshold=threshold)
        while pending and pending[0].at < end:
            _resolve(sess, pending.pop(0))


def _resolve(sess, visit: _Visit) -> None:  # noqa: ANN001
    """The technician at the alert: acknowledged and resolved with the visit's finding."""
    alert, at = sess.get(Alert, visit.alert_id), visit.at.to_pydatetime()
    alert_workflow.acknowledge(sess, alert, findings.TECHNICIAN, at)
    parts = [] if visit.mode is None else [visit.mode]
    alert_workflow.resolve(
        sess,
        alert,
        finding=visit.finding,
        text=None,
        parts_used=parts,
        by=findings.TECHNICIAN,
        now=at,
        mode=visit.mode,
    )


def _opened(engine: Engine, names: dict, t, end, *, split, horizon) -> list[tuple[str, int, pd.Timestamp]]:  # noqa: ANN001
    """The alerts opened in [t, end) whose horizon ends before `split`: (machine, alert id, start)."""
    with session(engine) as sess:
        found = sess.execute(
            select(Alert.id, Alert.machine_id, Prediction.ts)
            .join(Prediction, Prediction.id == Alert.first_prediction_id)
            .where(Prediction.ts >= t.to_pydatetime(), Prediction.ts < end.to_pydatetime())
            .order_by(Alert.id)
        ).all()
    out = [(names[m], a, _utc(ts)) for a, m, ts in found]
    return [o for o in out if o[2] + horizon < split]


def _revisit(world, panel: pd.DataFrame, visits: dict, opened: list, *, visit_hours: float, horizon) -> tuple:  # noqa: ANN001
    """The world with these visits, what each visit finds, and the machines a repair changed.

    A repair's rows are simulated again in `panel` from the visit on.
    """
    new = world.with_visits(visits)
    step = pd.Timedelta(seconds=world.config.step_seconds)
    repairs = new.repairs.assign(machine=new.repairs["machine"].astype(str), ts=_utc(new.repairs["ts"]))
    frame = pd.DataFrame({"machine": [m for m, _, _ in opened], "start": [s for _, _, s in opened]})
    hours = horizon / pd.Timedelta(hours=1)
    right = episodes.right_alerts(frame, new.failures, new.maintenance, horizon_hours=hours)
    due, changed = [], {}
    for (machine, alert_id, started), ok in zip(opened, right, strict=True):
        at = started + pd.Timedelta(hours=visit_hours)
        mine = repairs[(repairs["machine"] == machine) & (repairs["ts"] >= at) & (repairs["ts"] < at + step)]
        if len(mine):
            due.append(_Visit(at, alert_id, REPLACED, str(mine["found_mode"].iat[0])))
            changed[machine] = at
        elif not ok:
            due.append(_Visit(at, alert_id, NO_FAULT, None))
    if changed:
        new.refresh(panel, changed)
    return new, due, changed


def _rescore(models: dict, panel: pd.DataFrame, rows: dict, changed: dict) -> dict:
    """Each model's risk again on the machines a repair changed (features use a machine's own rows only)."""
    out = {}
    for mtype, (model, version, _, risk) in models.items():
        part = panel.iloc[rows[mtype]].reset_index(drop=True)
        mask = part["machine"].astype(str).isin(list(changed)).to_numpy()
        if mask.any():
            risk = risk.copy()
            risk[mask] = model.risk_rows(part[mask].reset_index(drop=True))[0]
        out[mtype] = (model, version, part, risk)
    return out


def _findings(engine: Engine, names: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The no-fault and replaced findings in the label store as training reads them, machines named."""
    found = ground_truth_by_id(engine)
    no_faults = found.no_faults.assign(machine=found.no_faults["machine"].astype(int).map(names))
    replaced = found.maintenance.assign(machine=found.maintenance["machine"].astype(int).map(names))
    return no_faults, replaced
