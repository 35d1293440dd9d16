"""Console screens for what admins do beside the admin page: the quarantine and the audit trail."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from api.console.login import Actor, PageSession, Viewer, require
from api.console.render import PageRoute, error_page, page, redirect
from fleet import display, errors, telemetry
from fleet.tables import Quarantine, WorkflowEvent

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SHOWN = 200


@router.get("/admin/quarantine", response_class=HTMLResponse)
def quarantine(
    request: Request, sess: PageSession, who: Viewer, reason: Annotated[str, Query(max_length=64)] = ""
):
    """Messages held back, newest first, by reason; replay once the cause is fixed."""
    require(who, "admin")
    try:
        telemetry.check_quarantine_reason(request.app.state.engine, reason)
    except errors.InvalidInput as exc:
        return error_page(request, 422, "Unknown reason", str(exc))
    waiting = Quarantine.replayed_at.is_(None)
    by_reason = select(Quarantine.reason, func.count()).where(waiting).group_by(Quarantine.reason)
    counts = dict(sess.execute(by_reason).all())
    query = select(Quarantine).where(waiting).order_by(Quarantine.id.desc()).limit(SHOWN)
    if reason:
        query = query.where(Quarantine.reason == reason)
    context = {"who": who, "rows": sess.scalars(query).all(), "counts": counts, "reason": reason}
    context["can_replay"] = hasattr(request.app.state, "replay_quarantine")
    return page(request, "quarantine.html", context)


@router.post("/admin/quarantine/replay")
def replay(request: Request, who: Actor, reason: Annotated[str, Form(max_length=64)] = ""):
    """Run the held messages (of one reason, or all) through ingest again; safe to repeat."""
    require(who, "admin")
    run = getattr(request.app.state, "replay_quarantine", None)
    if run is None:  # the app was built without ingest (e.g. in a test): say what to run instead
        return redirect("/admin/quarantine", "Replay is not available here.", error=True)
    try:
        telemetry.check_quarantine_reason(request.app.state.engine, reason)
    except errors.InvalidInput as exc:
        return redirect("/admin/quarantine", str(exc), error=True)
    report = run(engine=request.app.state.engine, reason=reason or None)
    left = sum(report.still_quarantined.values()) + report.not_replayable + report.sparkplug
    text = f"Replayed {report.examined} messages: {report.stored} stored, {report.duplicates} already stored"
    kept = [
        f"{report.not_replayable} kept only in part cannot be replayed" if report.not_replayable else "",
        f"{report.sparkplug} from the Sparkplug host are not replayed (protobuf)" if report.sparkplug else "",
    ]
    why = "; ".join(k for k in kept if k)
    back = f"/admin/quarantine?{urlencode({'reason': reason})}" if reason else "/admin/quarantine"
    return redirect(back, f"{text}, {left} still held" + (f" ({why})." if why else "."))


@router.get("/admin/audit", response_class=HTMLResponse)
def audit(
    request: Request,
    sess: PageSession,
    who: Viewer,
    actor: Annotated[str, Query(max_length=200)] = "",
    subject: Annotated[str, Query(max_length=16)] = "",
    subject_id: Annotated[str, Query(max_length=12)] = "",
    since: Annotated[str, Query(max_length=16)] = "",
    until: Annotated[str, Query(max_length=16)] = "",
):
    """Who did what to which object and when, newest first, filtered by actor, object and time."""
    require(who, "admin")
    problems: dict[str, str] = {}
    query = select(WorkflowEvent).order_by(WorkflowEvent.id.desc()).limit(SHOWN)
    if actor.strip():  # as the page names them: servicecast's own actions are stored under another name
        stored = display.SYSTEM_ACTOR if actor.strip() == display.AUTOMATIC else actor.strip()
        query = query.where(WorkflowEvent.actor == stored)
    if subject:
        query = query.where(WorkflowEvent.subject == subject)
    if subject_id.strip():
        if subject_id.strip().isdigit():
            query = query.where(WorkflowEvent.subject_id == int(subject_id))
        else:
            problems["subject_id"] = "A number, e.g. 42."
    days: dict[str, date] = {}
    for name, value, compare in (("since", since, "__ge__"), ("until", until, "__lt__")):
        if value:
            try:
                day = datetime.fromisoformat(value).replace(tzinfo=UTC)  # a day, read in UTC
            except ValueError:
                problems[name] = "A date like 2026-11-23."
                continue
            days[name] = day.date()
            if name == "until" and "since" in days and days["until"] < days["since"]:
                problems[name] = "Not before the From day."  # else an empty page reads as no events
                continue
            if name == "until":
                if day.date() == date.max:  # until the calendar's last day: no bound
                    continue
                day += timedelta(days=1)
            query = query.where(getattr(WorkflowEvent.at, compare)(day))
    subjects = sess.scalars(select(WorkflowEvent.subject).distinct().order_by(WorkflowEvent.subject)).all()
    chosen = {"actor": actor, "subject": subject, "subject_id": subject_id, "since": since, "until": until}
    rows = [] if problems else sess.scalars(query).all()
    context = {"who": who, "rows": rows, "chosen": chosen, "subjects": subjects, "problems": problems}
    return page(request, "audit.html", context, status_code=422 if problems else 200)
