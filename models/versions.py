"""Versioned model artifacts in `model_versions`: one active version per machine type, promote, rollback."""

from __future__ import annotations

import hashlib
import pickle
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from fleet import audit, machine_types
from fleet.db import for_writing, session
from fleet.tables import ModelVersion, utcnow


class ModelNotFound(LookupError):
    """No such model version (or no active one for a machine type)."""


class ModelUnreadable(RuntimeError):
    """A version's artifact cannot be unpickled (truncated, corrupted, or written by incompatible code)."""


@dataclass(frozen=True)
class VersionInfo:
    """A registered version without its artifact."""

    version: str
    machine_type: str
    kind: str
    active: bool
    created_at: datetime | None
    promoted_at: datetime | None
    train_start: datetime | None
    train_end: datetime | None
    params: dict
    metrics: dict
    threshold: float | None = None
    comparison: dict | None = None


def _info(row: ModelVersion) -> VersionInfo:
    return VersionInfo(
        row.version,
        row.machine_type,
        row.kind,
        row.active,
        row.created_at,
        row.promoted_at,
        row.train_start,
        row.train_end,
        dict(row.params or {}),
        dict(row.metrics or {}),
        row.threshold,
        dict(row.comparison) if row.comparison else None,
    )


def register(
    engine: Engine,
    *,
    model: object,
    machine_type: str,
    kind: str = "fleet",
    train_start: datetime | None = None,
    train_end: datetime | None = None,
    params: dict | None = None,
    metrics: dict | None = None,
    comparison: dict | None = None,
    activate: bool = True,
    by: audit.Actor | None = None,
    detail: dict | None = None,
) -> str:
    """Pickle and store a fitted model with its operating threshold; returns `type-YYYYmmddHHMMSS-hash`."""
    threshold = getattr(model, "threshold_", None)
    artifact = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    now = utcnow()
    digest = hashlib.sha256(artifact + uuid.uuid4().bytes).hexdigest()[:8]  # unique even for twin artifacts
    version = f"{machine_type}-{now:%Y%m%d%H%M%S}-{digest}"
    with session(engine) as sess:
        sess.add(
            ModelVersion(
                version=version,
                machine_type=machine_type,
                kind=kind,
                created_at=now,
                train_start=train_start,
                train_end=train_end,
                params=params or {},
                metrics=metrics or {},
                artifact=artifact,
                active=False,
                threshold=None if threshold is None else float(threshold),
                comparison=comparison,
            )
        )
    if activate:
        promote(engine, version, by=by, detail=detail)
    return version


def promote(
    engine: Engine, version: str, *, by: audit.Actor | None = None, detail: dict | None = None
) -> VersionInfo:
    """Make `version` the active one of its machine type (the previous one stays for rollback)."""
    return _activate(engine, version, "promoted", by, detail)


def refuse(
    engine: Engine, version: str, *, by: audit.Actor | None = None, detail: dict | None = None
) -> None:
    """Audit that a registered candidate was left inactive (champion/challenger said no)."""
    with session(for_writing(engine)) as sess:
        row = sess.scalars(select(ModelVersion).where(ModelVersion.version == version)).first()
        if row is None:
            raise ModelNotFound(f"no model version {version!r}")
        audit.record(
            sess,
            "model_version",
            row.id,
            "not_promoted",
            by,
            {"machine_type": row.machine_type} | (detail or {}),
        )


def _activate(
    engine: Engine, version: str, action: str, by: audit.Actor | None, detail: dict | None = None
) -> VersionInfo:
    """Make `version` active and audit which version it replaced."""
    with session(for_writing(engine)) as sess:
        row = sess.scalars(select(ModelVersion).where(ModelVersion.version == version)).first()
        if row is None:
            raise ModelNotFound(f"no model version {version!r}")
        active = select(ModelVersion.version).where(
            ModelVersion.machine_type == row.machine_type, ModelVersion.active
        )
        before = sess.scalar(active)
        sess.execute(
            update(ModelVersion).where(ModelVersion.machine_type == row.machine_type).values(active=False)
        )
        row.active = True
        row.promoted_at = utcnow()
        sess.flush()
        audit.record(
            sess,
            "model_version",
            row.id,
            action,
            by,
            {"machine_type": row.machine_type} | (detail or {}),
            before={"active": before},
            after={"active": version},
        )
        return _info(row)


def rollback(engine: Engine, machine_type: str, *, by: audit.Actor | None = None) -> VersionInfo:
    """Re-activate the version promoted before the active one of `machine_type`."""
    with session(engine) as sess:
        rows = sess.scalars(
            select(ModelVersion)
            .where(ModelVersion.machine_type == machine_type, ModelVersion.promoted_at.is_not(None))
            .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc())
        ).all()
    current = next((r for r in rows if r.active), None)
    earlier = [r for r in rows if not r.active and (current is None or r.promoted_at <= current.promoted_at)]
    if not earlier:
        raise ModelNotFound(f"no earlier promoted version of {machine_type!r} to roll back to")
    return _activate(engine, earlier[0].version, "rolled_back", by)


def list_versions(engine: Engine, machine_type: str | None = None) -> list[VersionInfo]:
    """Every registered version, newest first."""
    query = select(ModelVersion).order_by(ModelVersion.id.desc())
    if machine_type:
        query = query.where(ModelVersion.machine_type == machine_type)
    with session(engine) as sess:
        return [_info(r) for r in sess.scalars(query)]


def load(engine: Engine, version: str) -> object:
    """The unpickled model of a version (artifacts are our own, written by `register`), told what its
    machine type now says about its sensors (words, OEM limits): a type change reaches a model here."""
    with session(engine) as sess:
        columns = select(ModelVersion.artifact, ModelVersion.machine_type)
        row = sess.execute(columns.where(ModelVersion.version == version)).first()
        if row is None:
            raise ModelNotFound(f"no model version {version!r}")
        specs = machine_types.model_specs(sess, row.machine_type)
    try:
        model = pickle.loads(row.artifact)
    except Exception as exc:  # a damaged pickle raises whatever its bytes lead to
        raise ModelUnreadable(
            f"model version {version} cannot be loaded ({type(exc).__name__}: {exc}); retrain or roll back"
        ) from exc
    return model.use_types(specs) if hasattr(model, "use_types") else model


def trend_limits(sess: Session, version: str) -> dict[str, float]:
    """Per sensor, the limit on its deviation from its usual level that `version`'s trend forecast crosses.

    Training records them beside the artifact; a version registered without them is unpickled once here.
    """
    row = sess.execute(select(ModelVersion.params).where(ModelVersion.version == version)).first()
    if row is None:
        raise ModelNotFound(f"no model version {version!r}")
    limits = (row.params or {}).get("trend_limits")
    if limits is None:
        artifact = sess.scalar(select(ModelVersion.artifact).where(ModelVersion.version == version))
        limits = getattr(getattr(pickle.loads(artifact), "trend_", None), "limits_", None) or {}
    return {str(sensor): float(limit) for sensor, limit in limits.items()}


def thresholds(sess: Session, versions: Iterable[str]) -> dict[str, float]:
    """The operating threshold each of `versions` was trained and backtested with (if it has one)."""
    rows = sess.execute(
        select(ModelVersion.version, ModelVersion.threshold).where(
            ModelVersion.version.in_(list(versions)), ModelVersion.threshold.is_not(None)
        )
    )
    return {v: float(t) for v, t in rows}


def active_versions(engine: Engine) -> dict[str, str]:
    """Active version per machine type."""
    with session(engine) as sess:
        rows = sess.execute(
            select(ModelVersion.machine_type, ModelVersion.version).where(ModelVersion.active)
        )
        return {t: v for t, v in rows}


def load_active(engine: Engine, *, unreadable: dict[str, str] | None = None) -> dict[str, tuple[str, object]]:
    """(version, model) per machine type, for the scorer. A version that cannot be loaded raises
    `ModelUnreadable`, or with `unreadable` is left out and its reason put there under its type: one
    damaged artifact must not stop the other types' scoring."""
    models = {}
    for machine_type, version in active_versions(engine).items():
        try:
            models[machine_type] = (version, load(engine, version))
        except ModelUnreadable as exc:
            if unreadable is None:
                raise
            unreadable[machine_type] = str(exc)
    return models
