"""Training: fit one `FleetModel` per machine type on a period, pick its alert threshold, register it."""

from __future__ import annotations

import resource
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from fleet import labels, machine_types, panels
from fleet import registry as fleet_registry
from fleet.audit import Actor
from fleet.display import count
from fleet.tables import ArchivedRange, Machine, Telemetry
from models import champion, cold_start, episodes, event_features, features, steady_threshold
from models.fleet_features import FleetFeatures
from models.fleet_model import FleetModel
from models.labels import make_targets, within

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHUNK_MACHINES = 50
MAX_TYPE_ROWS = 500_000  # rows of one type trained on (peak memory measured in docs/benchmarks.md)
MAX_FALSE_ALARMS = 0.08  # per machine-month, of the training alerts a threshold may open
MIN_LEAD_HOURS = 24.0  # an alert counts for a failure only this far ahead


def choose_threshold(
    model: FleetModel,
    panel: pd.DataFrame,
    failures: pd.DataFrame,
    maintenance: pd.DataFrame | None,
    *,
    min_precision: float = 0.85,
    max_false_alarms: float = MAX_FALSE_ALARMS,
    min_lead_hours: float = MIN_LEAD_HOURS,
    plateau_middle: bool = False,
    visits: pd.DataFrame | None = None,
    resamples: int = steady_threshold.RESAMPLES,
) -> tuple[float, dict]:
    """Lowest threshold whose out-of-fold training alerts keep precision and false alarms in bounds.

    When none does, the lowest that keeps the false alarms in bounds (the highest notch if none does):
    the precision target out of reach, the technicians' budget of false alarms still holds. With
    `resamples` (default), that rule's median choice over bootstrap resamples of the training machines
    (`models.steady_threshold`); 0 judges the machines once. An alert with a visit without finding
    (`visits`) within its horizon and no failure or found wear is left out: neither right nor wrong, the
    visit may have repaired what it saw (`episodes.GroundTruth.unjudged`).
    With `plateau_middle`, the middle of the run of higher thresholds that open the very same training alerts:
    where out-of-fold risks are nearly 0 or 1, the lowest of them sits at the edge of the noise that a
    model averaged over folds shows on new machines.
    """
    clf = model.classifier_
    if clf is None or clf.oof_ is None or np.all(np.isnan(clf.oof_)):
        return 0.5, {}
    feats = model.features_
    machines = panel[feats.machine_col].astype(str).to_numpy()
    ts = pd.to_datetime(panel[feats.time_col], utc=True)
    code, names = pd.factorize(machines)
    scored = np.unique(code[~np.isnan(clf.oof_)])
    seen, mine = names[scored], np.isin(code, scored)
    f = failures[failures["machine"].astype(str).isin(seen)]
    m = None if maintenance is None else maintenance[maintenance["machine"].astype(str).isin(seen)]
    months = episodes.machine_months(machines[mine], ts[mine])
    table = episodes.RiskTable(machines, ts)
    truth = episodes.GroundTruth(f, m, horizon_hours=model.horizon_hours)
    by_machine = steady_threshold.Sweep(seen, machines[mine], ts[mine], truth)
    chosen, budget, tried = None, None, []
    for thr in np.round(np.arange(0.1, 0.96, 0.05), 2):
        alerts = table.alerts(clf.oof_, thr)
        stats = truth.metrics(alerts, machine_months=months, min_lead_hours=min_lead_hours, visits=visits)
        if resamples:
            by_machine.add(alerts[~truth.unjudged(alerts, visits)])
        precision = stats["precision"] or 0.0
        fa = stats["false_alarms_per_machine_month"] or 0.0
        if budget is None and fa <= max_false_alarms:
            budget = (float(thr), stats)
        if chosen is None and precision >= min_precision and fa <= max_false_alarms:
            chosen = (float(thr), stats)
        tried.append((float(thr), stats))
    picked = chosen or budget or tried[-1]
    if resamples:
        notch = steady_threshold.steady_notch(
            by_machine.counts(),
            min_precision=min_precision,
            max_false_alarms=max_false_alarms,
            resamples=resamples,
        )
        picked = tried[notch]
    if not plateau_middle:
        return picked
    same = [t for t, st in tried if t >= picked[0] and _opens(st) == _opens(picked[1])]
    run = [t for k, t in enumerate(same) if np.isclose(t, picked[0] + 0.05 * k)]
    return next((t, st) for t, st in tried if t == run[len(run) // 2])


def _opens(stats: dict) -> tuple:
    """What a threshold's training alerts are: how many, how many right, which failures they caught."""
    return stats["alerts"], stats["true_alerts"], stats["precursor"]["detected_min_lead"]


def train_type(
    panel: pd.DataFrame,
    failures: pd.DataFrame,
    maintenance: pd.DataFrame | None,
    *,
    no_faults: pd.DataFrame | None = None,
    visits: pd.DataFrame | None = None,
    until: pd.Timestamp | None = None,
    precision_target: float = 0.85,
    max_false_alarms: float = MAX_FALSE_ALARMS,
    min_lead_hours: float = MIN_LEAD_HOURS,
    plateau_middle: bool = False,
    **params: object,
) -> tuple[FleetModel, dict]:
    """Fit on one type's rows before `until` (later ground truth unseen); threshold from OOF alerts.

    `no_faults` and `visits` (machine, ts): "no fault found" findings and visits without finding, as
    `make_targets` reads them.
    """
    ts = pd.to_datetime(panel["ts"], utc=True)
    if until is not None:
        panel = panel[ts < until].reset_index(drop=True)
        failures = failures[pd.to_datetime(failures["ts"], utc=True) < until]
        if maintenance is not None:
            maintenance = maintenance[pd.to_datetime(maintenance["ts"], utc=True) < until]
        if no_faults is not None:
            no_faults = no_faults[pd.to_datetime(no_faults["ts"], utc=True) < until]
        if visits is not None:
            visits = visits[pd.to_datetime(visits["ts"], utc=True) < until]
    y = make_targets(panel, failures, maintenance, no_faults=no_faults, visits=visits, until=until)
    model = FleetModel(**params).fit(panel, y)
    threshold, stats = choose_threshold(
        model,
        panel,
        failures,
        maintenance,
        min_precision=precision_target,
        max_false_alarms=max_false_alarms,
        min_lead_hours=min_lead_hours,
        plateau_middle=plateau_middle,
        visits=visits,
    )
    model.threshold_ = threshold
    if model.classifier_ is not None:
        model.classifier_.oof_ = None  # training-period scores: not part of the artifact
    machines = int(panel["machine"].nunique())
    positive, known = within(y, model.horizon_hours)
    metrics = {
        "threshold": threshold,
        "precision_target": precision_target,
        "max_false_alarms": max_false_alarms,
        "min_lead_hours": min_lead_hours,
        "train_alerts": stats,
        "rows": int(len(panel)),
        "machines": machines,
        "labelled_rows": {"positive": int(positive.sum()), "negative": int((known & ~positive).sum())},
    }
    return model, metrics


@dataclass(frozen=True)
class GroundTruth:
    """The label store's events as training reads them, keyed by machine id (as the scorer's panels are)."""

    failures: pd.DataFrame  # machine, ts, mode, has_precursor, machine_type
    maintenance: pd.DataFrame  # machine, ts, kind, found_mode, machine_type
    no_faults: pd.DataFrame  # machine, ts, machine_type
    visits: pd.DataFrame  # machine, ts, machine_type: visits that recorded no finding

    def of_type(self, machine_type: str) -> GroundTruth:
        """Only the events of one machine type."""
        frames = (self.failures, self.maintenance, self.no_faults, self.visits)
        return GroundTruth(*(f[f["machine_type"] == machine_type] for f in frames))


def ground_truth_by_id(engine: Engine) -> GroundTruth:
    """Every label, whatever its source (simulator, import, finding): the only ground truth training reads."""
    with engine.connect() as conn:
        frame = labels.read(conn)
    named = frame["mode"].fillna(frame["component"].mask(frame["component"] == "")).fillna("unknown")
    frame = frame.assign(machine=frame["machine_id"].astype(str), mode=named)
    failures = frame[frame["kind"] == "failure"]
    # A failure whose precursor nobody recorded (imports, findings) counts as one that showed signs.
    failures = failures.assign(has_precursor=failures["precursor"].fillna(True).astype(bool))
    visits = frame[frame["kind"].isin(("replacement", "maintenance"))]
    visits = visits.assign(found_mode=visits["mode"].where(visits["kind"] == "replacement"))
    return GroundTruth(
        failures=failures[["machine", "ts", "mode", "has_precursor", "machine_type"]].reset_index(drop=True),
        maintenance=visits.assign(kind=visits["activity"].fillna(visits["kind"]))[
            ["machine", "ts", "kind", "found_mode", "machine_type"]
        ].reset_index(drop=True),
        no_faults=_marks(frame, "no_fault"),
        visits=_marks(frame, "visit"),
    )


def _marks(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The labels of one kind as times of a machine (machine, ts, machine_type)."""
    return frame[frame["kind"] == kind][["machine", "ts", "machine_type"]].reset_index(drop=True)


def sample_machines(engine: Engine, ids: list[int], *, max_rows: int, seed: int = 0) -> list[int]:
    """All of `ids`, or a seeded sample of whole machines whose rows stay within `max_rows`.

    Memory while training grows with a type's rows (panel and feature table); whole machines keep every
    machine's history, which its causal features need. Rows count hot and archived alike (training reads
    both); a machine that does not fit beside those drawn before it is skipped, and only when none fits
    on its own is the smallest one taken alone.
    """
    with engine.connect() as conn:
        counts = Counter(
            dict(
                conn.execute(
                    select(Telemetry.machine_id, func.count())
                    .where(Telemetry.machine_id.in_(ids))
                    .group_by(Telemetry.machine_id)
                ).all()
            )
        )
        # An archived run holds one row per step from its first seq to its last (`fleet.archive.seq_runs`).
        rows_in_run = (ArchivedRange.seq_hi - ArchivedRange.seq_lo) // ArchivedRange.seq_step + 1
        counts.update(
            dict(
                conn.execute(
                    select(ArchivedRange.machine_id, func.sum(rows_in_run))
                    .where(ArchivedRange.machine_id.in_(ids))
                    .group_by(ArchivedRange.machine_id)
                ).all()
            )
        )
    rows = np.array([int(counts[i]) for i in ids])
    if rows.sum() <= max_rows:
        return list(ids)
    keep, total = [], 0
    for k in np.random.default_rng(seed).permutation(len(ids)):
        if total + rows[k] <= max_rows:
            keep.append(k)
            total += rows[k]
    return sorted(int(ids[k]) for k in (keep or [int(np.argmin(rows))]))


def read_type_panel(
    engine: Engine, ids: list[int], *, machine_type: str | None = None, chunk_machines: int = CHUNK_MACHINES
) -> pd.DataFrame:
    """The machines' whole history, read `chunk_machines` at a time.

    The driver's row tuples cost several times the float panel they become; reading by machine chunks
    keeps one chunk of them alive at a time instead of the whole type's. Sensors: those `machine_type`
    declares (machines of one type may differ in which they send) and those of a few sampled rows.
    """
    with engine.connect() as conn:
        sampled = panels.sensor_names(conn, machine_ids=ids[:50])
        declared = machine_types.sensor_specs(conn, machine_type) if machine_type else {}
    sensors = list(dict.fromkeys([*sampled, *declared]))
    parts = []
    for start in range(0, len(ids), chunk_machines):
        with engine.connect() as conn:
            chunk = ids[start : start + chunk_machines]
            parts.append(panels.read_panel(conn, machine_ids=chunk, since=_EPOCH, sensors=sensors))
    return features.one_row_per_time(pd.concat(parts, ignore_index=True)) if parts else pd.DataFrame()


def _too_little(
    panel: pd.DataFrame, *, failures: int, min_failures: int, start: pd.Timestamp | None
) -> str | None:
    """Why a type gets a cold-start version without training a failure model, or None."""
    if failures < min_failures:
        return f"too few failure labels: {failures} of {min_failures}"
    if start is not None and not (pd.to_datetime(panel["ts"], utc=True) < start).any():
        return f"no telemetry before the held-out window ({start:%Y-%m-%d %H:%M}) to train on"
    return None


def _no_failure_model(failures: int, start: pd.Timestamp | None) -> str:
    """Why a type with enough failure labels still gets no failure model."""
    before = "" if start is None else f" before the held-out window ({start:%Y-%m-%d %H:%M})"
    return (
        f"too few usable failure labels: {failures}, but{before} too few rows leading to a failure and rows "
        "known healthy (a horizon before the end of the data) on enough machines to fit a failure model"
    )


@dataclass(frozen=True)
class TrainingReport:
    """The versions a training run registered, and whose machines it pooled or left out."""

    versions: dict[str, str] = field(default_factory=dict)
    customers_used: int = 0
    machines_used: int = 0
    customers_left_out: int = 0
    machines_left_out: int = 0
    comparisons: dict[str, dict] = field(default_factory=dict)  # champion/challenger per type
    cold_start: tuple[str, ...] = ()  # types too short of failure labels for the supervised model
    notes: dict[str, str] = field(default_factory=dict)  # why a type got a cold-start version, or none
    # Per type: the pooled machines' maintenance labels (visits that found no wear); they change no row's
    # label (docs/models.md, "A visit without finding"): the count shows they were read nonetheless.
    maintenance_labels: dict[str, int] = field(default_factory=dict)
    peak_rss_mib: float = 0.0  # the process's peak resident memory when the run ended

    def pooling(self) -> str:
        """Whose machines the run used, in one line."""
        used, left = self.customers_used, self.customers_left_out
        return (
            f"pooled {count(self.machines_used, 'machine')} of {count(used, 'customer')} that "
            f"{'grants' if used == 1 else 'grant'} product_improvement; left out "
            f"{count(self.machines_left_out, 'machine')} of {count(left, 'customer')} that "
            f"{'does' if left == 1 else 'do'} not"
        )


def type_arguments(
    own: dict,
    *,
    precision_target: float,
    max_false_alarms: float,
    min_lead_hours: float | None,
    events: bool | None,
    params: dict,
) -> dict:
    """`train_type`'s arguments and `events` for a type whose `training:` block is `own`
    (`fleet.machine_types.training_settings`).

    The type's precision target and false-alarm bound replace the fleet-wide ones given here (the
    settings); `min_lead_hours`, `events` and model `params` given (not None) win over the type's.
    """
    model = {k: own[k] for k in ("horizon_hours", "part_evidence") if k in own} | params
    features = {k: own[k] for k in ("min_history_hours", "extremes") if k in own}
    if features and "features" not in params:
        model["features"] = FleetFeatures(**features)
    lead = own.get("min_lead_hours", MIN_LEAD_HOURS) if min_lead_hours is None else min_lead_hours
    return model | {
        "precision_target": own.get("precision_target", precision_target),
        "max_false_alarms": own.get("max_false_alarms", max_false_alarms),
        "min_lead_hours": lead,
        "events": own.get("events", False) if events is None else events,
    }


def train_from_store(
    engine: Engine,
    *,
    machine_type: str | None = None,
    activate: bool = True,
    force: bool = False,
    by: Actor | None = None,
    precision_target: float = 0.85,
    max_false_alarms: float = MAX_FALSE_ALARMS,
    holdout_days: float = 0.0,
    min_failures: int = 1,
    max_type_rows: int = MAX_TYPE_ROWS,
    machine_ids: Collection[int] | None = None,
    events: bool | None = None,
    finding_memory: bool = False,
    min_lead_hours: float | None = None,
    plateau_middle: bool = False,
    **params: object,
) -> TrainingReport:
    """Train per machine type on stored data of the customers that grant `product_improvement` only.

    A type with fewer than `min_failures` failure labels on those machines gets a cold-start version, and
    so does one whose labels leave too few usable rows to fit a failure model (`notes` says which);
    otherwise, with `holdout_days` > 0, the candidate trains before the last `holdout_days` and goes live
    only if it alerts at least as well as the champion there (without, it trains on all and goes live).
    A type with more than `max_type_rows` rows trains on a seeded sample of whole machines within it.
    The threshold counts a failure as alerted only `min_lead_hours` ahead and opens at most
    `max_false_alarms` false training alerts per machine-month (`choose_threshold`, also for
    `plateau_middle`); each type's `training:` settings take part as `type_arguments` says.
    `machine_ids` limits training to those machines; `events` adds the event features
    its type declares (`models.event_features`: code counts, time since each code, time since each
    component's last visit); `finding_memory` each machine's memory of its "no fault found" findings
    (`event_features.no_fault_memory`), which the scorer then reads from the label store.
    """
    truth = ground_truth_by_id(engine)
    with engine.connect() as conn:
        machines = pd.DataFrame(
            conn.execute(select(Machine.id, Machine.machine_type, Machine.customer_id)).all(),
            columns=["id", "type", "customer"],
        )
        pooled = fleet_registry.customers_granting(conn, "product_improvement")
    if machine_type:
        machines = machines[machines["type"] == machine_type]
    if machine_ids is not None:
        machines = machines[machines["id"].isin(list(machine_ids))]
    granted = machines["customer"].isin(pooled)
    left_out = machines[~granted]
    machines = machines[granted]
    versions, comparisons, cold, notes, maintenance = {}, {}, [], {}, {}
    for mtype, group in machines.groupby("type"):
        ids = group["id"].tolist()
        of_type = truth.of_type(mtype)
        named = {str(i) for i in ids}
        found_nothing = of_type.maintenance[of_type.maintenance["found_mode"].isna()]
        maintenance[mtype] = int(found_nothing["machine"].isin(named).sum())
        failures = int(of_type.failures["machine"].isin(named).sum())
        panel = read_type_panel(
            engine, sample_machines(engine, ids, max_rows=max_type_rows), machine_type=mtype
        )
        if panel.empty:
            notes[mtype] = f"no telemetry from its {len(ids)} pooled machines yet"
            continue
        panel = panel.dropna(axis=1, how="all").assign(machine_type=mtype)  # picks the reference days
        with engine.connect() as conn:
            args = type_arguments(
                machine_types.training_settings(conn, mtype),
                precision_target=precision_target,
                max_false_alarms=max_false_alarms,
                min_lead_hours=min_lead_hours,
                events=events,
                params=params,
            )
            if args.pop("events"):
                panel = event_features.add(conn, panel, event_features.columns_of_type(conn, mtype))
        if finding_memory:
            panel = event_features.no_fault_memory(panel, of_type.no_faults)
        start = champion.holdout_start(panel, holdout_days) if holdout_days > 0 else None
        reason = _too_little(panel, failures=failures, min_failures=min_failures, start=start)
        if reason is None:
            model, metrics = train_type(
                panel,
                of_type.failures,
                of_type.maintenance,
                no_faults=of_type.no_faults,
                visits=of_type.visits,
                until=start,
                plateau_middle=plateau_middle,
                **args,
            )
            reason = None if model.has_failure_model() else _no_failure_model(failures, start)
        if reason is not None:
            versions[mtype] = cold_start.register(
                engine, panel=panel, machine_type=mtype, failures=failures, activate=activate, by=by
            )
            cold.append(str(mtype))
            notes[mtype] = reason
            continue
        with engine.connect() as conn:  # the holdout counts the OEM alarm alerts, as the loaded champion's
            model.use_types(machine_types.model_specs(conn, mtype))
        versions[mtype], comparisons[mtype] = champion.register_candidate(
            engine,
            model=model,
            metrics=metrics,
            machine_type=mtype,
            panel=panel,
            failures=of_type.failures,
            maintenance=of_type.maintenance,
            visits=of_type.visits,
            start=start,
            activate=activate,
            force=force,
            by=by,
        )
    return TrainingReport(
        versions=versions,
        customers_used=int(machines["customer"].nunique()),
        machines_used=len(machines),
        customers_left_out=int(left_out["customer"].nunique()),
        machines_left_out=len(left_out),
        comparisons=comparisons,
        cold_start=tuple(cold),
        notes=notes,
        maintenance_labels=maintenance,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
    )
