"""Technicians in a simulated run: an earlier model's alerts resolved with findings through the product path.

An earlier model, trained before `review_start`, scores the training period from then on; the live
policy's alert step (`api.alerts.AlertBook`, one per run) opens its alerts in a store of their own. A
technician visits each alert `visit_hours` after it opened and resolves it through the alert workflow
(`api.alerts.resolve`): "no fault found" when the machine neither failed nor had wear found within the
horizon after the alert opened and no wear was under way at the visit (`_wearing`: a technician sees a
degradation that fails later than the horizon; such an alert is resolved "other", a `visit` label this
review does not hand to training, as its visits change nothing here);
alerts that were right stay with the simulator's failure labels. Only alerts whose horizon ends before
`split` are visited, so no finding knows the test period. The findings come back from the label store
as training reads them.

With `review_every` (days) the alerts come from models retrained as a product would: the alerts of each
period [t, t + review_every) from a model trained on the rows before t with the findings recorded
before t, so the alerts a technician resolves come from models trained on nearly as much data as the
final one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import Engine, select

from api import alerts as alert_workflow
from api.auth import Principal
from fleet import migrate
from fleet.db import make_engine, session
from fleet.tables import Alert, Prediction
from models import episodes, scoring, versions
from models.training import ground_truth_by_id, train_type
from simulators.registration import register_machines

WEAR_SEEN = "wear seen, the alert came early for a failure later than its horizon; left in service"
TECHNICIAN = Principal(user_id=0, name="simulated technician", role="field_service", customers=None)


@dataclass(frozen=True)
class Findings:
    """The no-fault findings as training reads them (machine named as in the panel), and their counts."""

    no_faults: pd.DataFrame  # machine, ts, machine_type
    alerts: int  # alerts the earlier models opened in the reviewed period
    visited: int  # of them, alerts whose horizon ended before the split
    no_fault_found: int
    review_models: int = 1  # models trained per machine type to open the reviewed alerts


def _open_alerts(  # noqa: ANN001
    engine: Engine, model, part: pd.DataFrame, ids: dict, start, end, mtype: str, metrics: dict
) -> None:
    """Predictions of `model` (trained before `start`) on its alerting rows in [start, end), via policy."""
    version = versions.register(
        engine, model=model, machine_type=mtype, train_end=start.to_pydatetime(), metrics=metrics
    )
    risk, _ = model.risk_rows(part)
    if not write_predictions(engine, version, model, part, risk, ids, start, end):
        return
    # The live policy's alert step at the version's threshold (its offer step needs grants these lack).
    with session(engine) as sess:
        query = select(Prediction).where(Prediction.model_version == version).order_by(Prediction.id)
        book = alert_workflow.AlertBook(sess)
        for prediction in sess.scalars(query):
            book.apply(prediction, prediction.ts, threshold=model.threshold_)


def write_predictions(  # noqa: ANN001
    engine: Engine,
    version: int,
    model,
    part: pd.DataFrame,
    risk: np.ndarray,
    ids: dict,
    start,
    end,
    threshold: float | None = None,
) -> bool:
    """Store `version`'s alerting predictions on `part`'s rows in [start, end); False if there are none.

    Alerting: a risk at or above `threshold`, the model's own threshold if none is given.
    """
    threshold = model.threshold_ if threshold is None else threshold
    ts = pd.to_datetime(part["ts"], utc=True)
    rows = ((ts >= start) & (ts < end)).to_numpy() & (np.nan_to_num(risk, nan=-1.0) >= threshold)
    if not rows.any():
        return False
    keys = zip(part["tenant"].to_numpy()[rows], part["machine"].to_numpy()[rows], strict=True)
    pairs = [ids[(t, str(m))] for t, m in keys]
    due = pd.DataFrame({"customer_id": [c for c, _ in pairs], "machine_id": [m for _, m in pairs]})
    # Below the threshold the policy opens nothing, so only the alerting rows are written.
    scores = pd.DataFrame({"machine": due["machine_id"], "ts": ts[rows].to_numpy(), "status": "ok"})
    scores["risk"] = risk[rows]
    for col in ("failure_mode", "likely_modes", "eta_sensor"):
        scores[col] = None
    for col in ("rul_hours", "rul_low", "rul_high", "eta_h", "eta_low_h", "eta_high_h", "anomaly_score"):
        scores[col] = np.nan
    scores["contributions"], scores["explanation"] = None, ""
    scores = scores.sort_values("ts", kind="mergesort")
    with engine.begin() as conn:
        conn.execute(
            Prediction.__table__.insert(),
            scoring.prediction_rows(scores, due.drop_duplicates(), version, model.horizon_hours),
        )
    return True


def _visit(  # noqa: ANN001
    engine: Engine, names: dict, failures, maintenance, *, horizon_hours, visit_hours, until, since
) -> int:
    """Resolve each alert opened from `since` whose horizon ends before `until` by the machine's true state.

    Returns how many were visited.
    """
    with session(engine) as sess:
        opened = sess.execute(
            select(Alert, Prediction.ts)
            .join(Prediction, Prediction.id == Alert.first_prediction_id)
            .where(Prediction.ts >= since.to_pydatetime())
            .order_by(Alert.id)
        ).all()
        frame = pd.DataFrame(
            {"machine": [names[a.machine_id] for a, _ in opened], "start": [t for _, t in opened]}
        )
        right = episodes.right_alerts(frame, failures, maintenance, horizon_hours=horizon_hours)
        visited = 0
        for (alert, started), ok in zip(opened, right, strict=True):
            started = pd.to_datetime(started, utc=True)
            if started + pd.Timedelta(hours=horizon_hours) >= until:
                continue
            visited += 1
            if ok:
                continue
            at = pd.Timestamp(started + pd.Timedelta(hours=visit_hours))
            worn = _wearing(names[alert.machine_id], at, failures, maintenance, horizon_hours=horizon_hours)
            alert_workflow.acknowledge(sess, alert, TECHNICIAN, at.to_pydatetime())
            alert_workflow.resolve(
                sess,
                alert,
                finding="other" if worn else "no_fault_found",
                text=WEAR_SEEN if worn else None,
                parts_used=[],
                by=TECHNICIAN,
                now=at.to_pydatetime(),
            )
    return visited


def _wearing(machine: str, at: pd.Timestamp, failures, maintenance, *, horizon_hours: float) -> bool:  # noqa: ANN001
    """Whether wear is under way on the machine at `at`: what a technician there would see.

    A precursor failure whose degradation began by `at`, or a preventive visit that found wear within
    twice the horizon after `at` (the ground truth keeps no onset for a caught wear; a mode takes 7 to
    11 days from onset to failure at its nominal rate).
    """
    f = failures[(failures["machine"].astype(str) == machine) & failures["has_precursor"].astype(bool)]
    onset, ts = pd.to_datetime(f["onset"], utc=True), pd.to_datetime(f["ts"], utc=True)
    if ((onset <= at) & (ts >= at)).any():
        return True
    if maintenance is None or not len(maintenance):
        return False
    found = maintenance[(maintenance["machine"].astype(str) == machine) & maintenance["found_mode"].notna()]
    when = pd.to_datetime(found["ts"], utc=True)
    return bool(((when >= at) & (when <= at + pd.Timedelta(hours=2 * horizon_hours))).any())


def review(
    run,  # noqa: ANN001 - simulators.engine.SimulationRun
    panel: pd.DataFrame,
    *,
    split: pd.Timestamp,
    review_days: float = 60.0,
    visit_hours: float = 24.0,
    review_every: float | None = None,
    engine: Engine | None = None,
    **params: object,
) -> Findings:
    """Findings on the alerts earlier models open in the `review_days` before `split`.

    One model trained before the review window opens them all, or with `review_every` a model retrained
    every so many days with the findings recorded by then. The alerts and findings live in `engine`'s
    store (migrated, without the run's machines), else in a temporary SQLite file.
    """
    days = {"review_days": review_days, "visit_hours": visit_hours, "review_every": review_every}
    return in_store(engine, _review, run, panel, split=split, **days, **params)


def in_store(engine: Engine | None, fn, *args: object, **kwargs: object):  # noqa: ANN001, ANN201
    """`fn(engine, *args, **kwargs)`, else the same on a migrated temporary SQLite store."""
    if engine is not None:
        return fn(engine, *args, **kwargs)
    with TemporaryDirectory(prefix="servicecast-findings-") as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'store.db'}")
        try:
            migrate.upgrade(engine)
            return fn(engine, *args, **kwargs)
        finally:
            engine.dispose()


def _review(
    engine: Engine, run, panel: pd.DataFrame, *, split, review_days, visit_hours, review_every, **params
) -> Findings:  # noqa: ANN001
    start = split - pd.Timedelta(days=review_days)
    step = split - start if review_every is None else pd.Timedelta(days=review_every)
    ids = register_machines(engine=engine, machines=run.machines)
    names = {m: str(code) for (_, code), (_, m) in ids.items()}
    types = []
    for mtype, part in panel.groupby("machine_type", observed=True, sort=True):
        part = part[pd.to_datetime(part["ts"], utc=True) < split].reset_index(drop=True)
        f_type = run.failures[run.failures["machine_type"] == mtype]
        m_type = run.maintenance[run.maintenance["machine_type"] == mtype]
        types.append((str(mtype), part, f_type, m_type))
    horizon = float(params.get("horizon_hours", 168.0))
    visited, rounds, t = 0, 0, start
    while t < split:
        end, rounds = min(t + step, split), rounds + 1
        # Retrained as the product would: with the findings recorded so far (train_type keeps those before t).
        known = None if review_every is None else _no_faults(engine, names)
        for mtype, part, f_type, m_type in types:
            nf = None if known is None else known[known["machine_type"] == mtype]
            model, metrics = train_type(part, f_type, m_type, until=t, no_faults=nf, **params)
            metrics["no_faults"] = 0 if nf is None else int((pd.to_datetime(nf["ts"], utc=True) < t).sum())
            rows = part[pd.to_datetime(part["ts"], utc=True) < end].reset_index(drop=True)  # causal features
            _open_alerts(engine, model, rows, ids, t, end, mtype, metrics)
        visited += _visit(
            engine,
            names,
            run.failures,
            run.maintenance,
            horizon_hours=horizon,
            visit_hours=visit_hours,
            until=split,
            since=t,
        )
        t = end
    with session(engine) as sess:
        opened = len(sess.scalars(select(Alert.id)).all())
    no_faults = _no_faults(engine, names)
    return Findings(
        no_faults=no_faults,
        alerts=opened,
        visited=visited,
        no_fault_found=len(no_faults),
        review_models=rounds,
    )


def _no_faults(engine: Engine, names: dict) -> pd.DataFrame:
    """The findings in the label store as training reads them, machines named as in the panel."""
    found = ground_truth_by_id(engine).no_faults
    return found.assign(machine=found["machine"].astype(int).map(names))


def paired_summary(deltas: list[float], *, draws: int = 10_000, seed: int = 0) -> dict:
    """Mean of paired after-minus-before differences with a 95 % t interval and a bootstrap one.

    Each difference comes from one pair that shares everything (simulation, folds, classifier seed) but
    the findings, so the seed-to-seed spread cancels within a pair and only the findings' effect varies.
    """
    d = np.asarray([x for x in deltas if x is not None], dtype=float)
    out = {"pairs": len(d), "improved": int((d > 0).sum()), "worse": int((d < 0).sum())}
    if not len(d):
        return out | {"mean": None, "t95": None, "bootstrap95": None}
    out["mean"] = float(d.mean())
    if len(d) < 2:
        return out | {"t95": None, "bootstrap95": None}
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    means = np.random.default_rng(seed).choice(d, size=(draws, len(d)), replace=True).mean(axis=1)
    out["t95"] = [out["mean"] - half, out["mean"] + half]
    out["bootstrap95"] = [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]
    return out
