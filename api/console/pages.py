"""Console pages (GET): fleet, alerts, machines, offers, accounts, admin."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api import catalog, connectivity, policy, schemas, silence, telemetry_view
from api.alerts import OPEN_STATES
from api.auth import Principal
from api.console import admin_screens, charts, views
from api.console.login import HOME, PageSession, Viewer, require, viewer
from api.console.render import LoginRequired, PageRoute, page, sensor_label
from api.deps import has_right
from api.offers import get_visible_offer, risk_scope
from api.scope import get_visible, restrict
from fleet import display, erasure, registry
from fleet.tables import (
    AccountAssignment,
    Alert,
    ApiKey,
    Customer,
    Machine,
    Offer,
    Prediction,
    Site,
    User,
    WorkflowEvent,
    utcnow,
)
from models import champion, modes
from models import versions as model_versions

router = APIRouter(route_class=PageRoute, include_in_schema=False)
router.include_router(admin_screens.router)
ALERT_TABS = {
    "active": OPEN_STATES,
    "open": ("open",),
    "acknowledged": ("acknowledged",),
    "assigned": ("assigned",),
    "resolved": ("resolved",),
}
CHART_DAYS = (1, 7, 30)
FLEET_PAGE = 100
CHART_POINTS = 480
# Canvas widths near the drawn widths at 1366 px, so chart text shows near its own size (charts keep
# their aspect ratio): the key sensor's chart spans the page, the others share a row.
KEY_CHART_WIDTH = 1280
SENSOR_CHART_WIDTH = 480


def _optional_id(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and 0 < int(value) <= schemas.INT32_MAX else None


@router.get("/", response_class=HTMLResponse)
def home(request: Request, sess: PageSession):
    """The caller's own start page, or the sign-in page."""
    try:
        who = viewer(request, sess)
    except LoginRequired:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(HOME[who.role], status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None):  # noqa: A002
    """Sign in with an API key."""
    return page(request, "login.html", {"next": next or ""})


@router.get("/fleet", response_class=HTMLResponse)
def fleet(
    request: Request,
    sess: PageSession,
    who: Viewer,
    customer: Annotated[str | None, Query(max_length=12)] = None,
    site: Annotated[str | None, Query(max_length=12)] = None,
    machine_type: Annotated[str | None, Query(alias="type", max_length=64)] = None,
    q: Annotated[str, Query(max_length=100)] = "",
    page_no: schemas.PageNumber = 1,
):
    """Machines by risk, found by machine, serial, customer or site, filtered by customer, site and type."""
    require(who, "fleet:read")
    chosen = {"customer": _optional_id(customer), "site": _optional_id(site), "type": machine_type or None}
    chosen["q"] = q.strip()
    rows = views.fleet_rows(
        sess,
        who,
        customer_id=chosen["customer"],
        site_id=chosen["site"],
        machine_type=chosen["type"],
        search=chosen["q"] or None,
        limit=FLEET_PAGE + 1,  # one more tells whether a next page exists
        offset=(page_no - 1) * FLEET_PAGE,
    )
    context = {"who": who, "rows": rows[:FLEET_PAGE], "chosen": chosen, "page_no": page_no}
    context["type_specs"] = views.specs_by_type(sess, (r.machine.machine_type for r in rows))
    at, quiet = request.app.state.clock(), silent_after(request)
    judge = connectivity.judge
    links = {r.machine.id: judge(r.last_received, at, silent_after=quiet) for r in rows}
    for machine_id, share in silence.degraded(sess, list(links)).items():  # judged by the policy's rate check
        if links[machine_id].state == "online":
            links[machine_id] = connectivity.Connectivity("degraded", links[machine_id].last_received, share)
    context["links"] = links
    context |= {"more": len(rows) > FLEET_PAGE, "first": (page_no - 1) * FLEET_PAGE + 1}
    context |= views.filter_choices(sess, who, chosen["customer"])
    query = {k: v for k, v in (("customer", customer), ("site", site), ("type", machine_type), ("q", q)) if v}
    context["query"] = urlencode(query)
    return page(request, "fleet.html", context)


@router.get("/alerts", response_class=HTMLResponse)
def alert_queue(
    request: Request,
    sess: PageSession,
    who: Viewer,
    status: Literal["active", "open", "acknowledged", "assigned", "resolved"] = "active",
    severity: Literal["critical", "high", "medium", ""] = "",
):
    """The alert queue: severity first, then the shortest lead time."""
    require(who, "alerts:read")
    rows = views.alert_rows(sess, who, states=ALERT_TABS[status], severity=severity or None)
    names = views.assignee_names(sess, rows)
    context = {"who": who, "rows": rows, "status": status, "severity": severity, "names": names}
    context["tabs"] = list(ALERT_TABS)
    context["type_specs"] = views.specs_by_type(sess, (m.machine_type for _, m, *_ in rows))
    by_status = views.alert_counts(sess, who, severity=severity or None)
    context["counts"] = {tab: sum(by_status.get(s, 0) for s in states) for tab, states in ALERT_TABS.items()}
    return page(request, "alerts.html", context)


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(request: Request, alert_id: schemas.AlertId, sess: PageSession, who: Viewer):
    """One alert: its evidence, its history and what can be done with it."""
    require(who, "alerts:read")
    alert = get_visible(sess, Alert, alert_id, risk_scope(sess, who), "alert")
    machine = sess.get(Machine, alert.machine_id)
    customer = sess.get(Customer, alert.customer_id)
    history = _history(sess, "alert", alert.id)
    staff = views.field_staff(sess)
    assignees = {(e.data or {}).get("assignee_id") for e in history}
    names = views.user_names(sess, {alert.assignee_id} | {e.actor_id for e in history} | assignees)
    context = {
        "who": who,
        "alert": alert,
        "machine": machine,
        "customer": customer,
        "history": history,
        "staff": staff,
        "names": names,
        "specs": views.sensor_specs(sess, machine.machine_type),
        "prediction": sess.get(Prediction, alert.last_prediction_id) if alert.last_prediction_id else None,
        "about_messages": alert.failure_mode in connectivity.MODES,
        "model": views.model_version(sess, alert.model_version),
    }
    return page(request, "alert.html", context)


def _alert_mark(alert: Alert, machine: Machine, specs: dict) -> str:
    """An alert's marker on a risk chart, in what a person knows: machine, failure mode, when raised."""
    mode = f": {modes.name(alert.failure_mode, specs)}" if alert.failure_mode else ""
    return f"Alert on {machine.code}{mode}, raised {display.when(alert.first_seen)}"


@router.get("/machines/{machine_id}", response_class=HTMLResponse)
def machine_page(
    request: Request,
    machine_id: schemas.MachineId,
    sess: PageSession,
    who: Viewer,
    days: schemas.Days = 7,
):
    """A machine: sensor charts with the forecast to the limit, risk history, explanation, alerts, offers."""
    require(who, "fleet:read")
    machine = get_visible(sess, Machine, machine_id, who, "machine")
    days = min(CHART_DAYS, key=lambda d: abs(d - days))
    customer = sess.get(Customer, machine.customer_id)
    risk_hidden = not risk_scope(sess, who).sees(machine.customer_id)
    latest = None if risk_hidden else views.latest_prediction(sess, machine.id)
    last = views.last_message(sess, machine.id)
    end = telemetry_view.aware(last.ts if last else utcnow()) + timedelta(seconds=1)
    start = end - timedelta(days=days)
    sensor_charts, rows, downsampled = [], 0, False
    specs = views.sensor_specs(sess, machine.machine_type)
    if has_right(who, "telemetry:read"):
        window = telemetry_view.window(
            sess, machine_id=machine.id, start=start, end=end, max_points=CHART_POINTS
        )
        rows, downsampled = window.rows, window.downsampled
        now = request.app.state.clock()
        sensor_charts = _sensor_charts(sess, machine, latest, window, start, end, specs, now)
    predictions = [] if risk_hidden else views.predictions_between(sess, machine.id, start, end)
    alerts = views.alert_rows(
        sess, who, states=(*OPEN_STATES, "resolved"), severity=None, limit=20, machine_id=machine.id
    )
    offers = (
        views.offer_rows(sess, who, states=views.ALL_OFFER_STATES, limit=20, machine_id=machine.id)
        if has_right(who, "offers:read")
        else []
    )
    threshold = _alert_threshold(request, sess, machine, latest)
    risk_chart = charts.render(
        charts.Chart(
            title=f"Failure risk of {machine.code}",
            lines=[charts.Line("risk", [(p.ts, p.risk) for p in predictions], "series risk")],
            start=start,
            end=end,
            y_range=(0.0, 1.0),
            limit=threshold,
            limit_label=f"alert threshold {display.percent(threshold)}",
            value_format=display.percent,
            marks=[(a.first_seen, _alert_mark(a, machine, specs)) for a, *_ in alerts],
        )
    )
    context = {
        "who": who,
        "machine": machine,
        "customer": customer,
        "latest": latest,
        "model": views.model_version(sess, latest.model_version if latest else None),
        "risk_hidden": risk_hidden,
        "days": days,
        "chart_days": CHART_DAYS,
        "sensor_charts": sensor_charts,
        "risk_chart": risk_chart,
        "rows": rows,
        "downsampled": downsampled,
        "alerts": alerts,
        "names": views.assignee_names(sess, alerts),
        "offers": offers,
        "start": start,
        "end": end,
        "purposes": registry.purposes_of(sess, machine.customer_id),
        "specs": specs,
        "type_specs": {machine.machine_type: specs},  # for its alerts
        "site": sess.get(Site, machine.site_id) if machine.site_id else None,
        "last": last,
        "link": connectivity.of_machine(
            sess,
            machine.id,
            request.app.state.clock(),
            silent_after=silent_after(request),
            degraded_below=request.app.state.settings.machine_degraded_below,
        ),
    }
    return page(request, "machine.html", context)


def _alert_threshold(request: Request, sess: Session, machine: Machine, latest: Prediction | None) -> float:
    """The threshold the policy applies to the machine: that of the version that scored its latest
    prediction, else of the active version of its type (which scores the next one)."""
    version = latest.model_version if latest is not None else None
    version = version or model_versions.active_versions(request.app.state.engine).get(machine.machine_type)
    return policy.alert_threshold(sess, version)


def silent_after(request: Request) -> timedelta:
    """How long without a message makes a machine silent (SERVICECAST_MACHINE_SILENT_AFTER_MIN)."""
    return timedelta(minutes=request.app.state.settings.machine_silent_after_min)


def _sensor_charts(sess, machine, latest, window, start, end, specs, now) -> list[dict]:  # noqa: ANN001
    """A chart per sensor read (also one its type no longer lists), with the OEM limit where the type
    gives one; the key sensor (the one carrying most of the risk) comes first and spans the page; the
    forecast sensor's chart adds the trend forecast to its limit (OEM, else learned)."""
    sensors = {k for p in window.points for k in p.readings}
    forecast = latest.eta_sensor if latest is not None and latest.eta is not None else None
    key = _risk_carrier(latest) or forecast
    limits = views.trend_limits(sess, latest.model_version if latest else None)
    out = []
    for sensor in sorted(sensors, key=lambda s: (s != key, s)):
        points = [(p.ts, p.readings.get(sensor)) for p in window.points]
        spec = specs.get(sensor)
        chart = charts.Chart(
            title=f"{sensor_label(sensor, specs)} of {machine.code}",
            lines=[charts.Line(sensor_label(sensor, specs), points)],
            start=start,
            end=end,
            unit=spec.unit if spec else "",
            width=KEY_CHART_WIDTH if sensor == key else SENSOR_CHART_WIDTH,
        )
        note = None
        if spec is not None and spec.oem_limit is not None:
            kind = "alarm" if spec.alarm is not None else "warning"
            chart.limit = spec.oem_limit
            chart.limit_label = f"OEM {kind} limit {spec.oem_limit:g} {spec.unit}".rstrip()
        if sensor == forecast and (chart.limit is not None or sensor in limits):
            chart, note = _with_forecast(
                sess, machine, latest, sensor, chart, points, limits.get(sensor), specs, now
            )
        out.append({"sensor": sensor, "svg": charts.render(chart), "note": note, "key": sensor == key})
    return out


def _risk_carrier(latest) -> str | None:  # noqa: ANN001
    """The sensor whose contribution to the latest prediction's risk is the largest, if it names any."""
    weights = {}
    for c in (latest.contributions or []) if latest is not None else []:
        value = c.get("contribution", c.get("delta")) if isinstance(c, dict) else None
        if c.get("sensor") and isinstance(value, int | float):
            weights[c["sensor"]] = value
    return max(weights, key=weights.get) if weights else None


def _with_forecast(sess, machine, latest, sensor, chart, points, limit: float | None, specs, now):  # noqa: ANN001, ANN202
    """Draw the trend forecast: from the recent level to the limit, reached at the predicted time; the
    chart's OEM limit if it has one, else the learned `limit` on the deviation from the usual level."""
    last = telemetry_view.aware(latest.ts)
    reference = telemetry_view.window(
        sess,
        machine_id=machine.id,
        start=last - timedelta(days=6),
        end=last - timedelta(days=2),
        max_points=48,
    )
    base = [p.readings.get(sensor) for p in reference.points]
    base = [v for v in base if v is not None]
    recent = [v for t, v in points if v is not None and t >= last - timedelta(hours=6)]
    if not recent or (chart.limit is None and not base):
        return chart, None
    if chart.limit is not None:
        limit_value = chart.limit
    else:
        level = sum(base) / len(base)
        limit_value = level + limit * max(abs(level), 1e-6)
        chart.limit, chart.limit_label = limit_value, f"limit ({limit * 100:+.0f} % on its usual level)"
    name = sensor_label(sensor, specs)
    if (since := _above_since(points, limit_value)) is not None:  # crossed: no forecast of the crossing
        return chart, f"{name} is above its limit {limit_value:.3g} since {since:%Y-%m-%d %H:%M} UTC."
    eta = telemetry_view.aware(latest.eta)
    if eta <= now:
        return chart, f"{name} was forecast to reach its limit {limit_value:.3g} by {eta:%Y-%m-%d %H:%M} UTC."
    low = telemetry_view.aware(latest.eta_low or latest.eta)
    high = telemetry_view.aware(latest.eta_high or latest.eta)
    chart.forecast = charts.Forecast(start=last, value=sum(recent) / len(recent), eta=eta, low=low, high=high)
    note = (
        f"Forecast: {name} reaches its limit {limit_value:.3g} around "
        f"{eta:%Y-%m-%d %H:%M} UTC (80 % band {low:%d %b %H:%M} – {high:%d %b %H:%M})."
    )
    return chart, note


def _above_since(points, limit: float):  # noqa: ANN001, ANN202
    """When the series' latest stretch at or above `limit` began, or None if its last value is below."""
    since = None
    for t, v in reversed(points):
        if v is None:
            continue
        if v < limit:
            break
        since = t
    return since


@router.get("/offers", response_class=HTMLResponse)
def offer_inbox(
    request: Request,
    sess: PageSession,
    who: Viewer,
    tab: Literal["proposed", "approved", "sent", "outcome", "closed"] | None = None,
):
    """The offers inbox by stage, with the customer's consent state beside each offer."""
    require(who, "offers:read")
    tab = tab or ("sent" if who.role == "customer" else "proposed")
    rows = views.offer_rows(sess, who, states=views.OFFER_TABS[tab])
    consent = registry.purposes_by_customer(sess, {c.id for _, _, c in rows})
    counts = views.offer_counts(sess, who)
    tabs = [t for t in views.OFFER_TABS if who.role != "customer" or t in ("sent", "outcome")]
    context = {"who": who, "rows": rows, "tab": tab, "tabs": tabs, "counts": counts, "consent": consent}
    return page(request, "offers.html", context)


@router.get("/offers/{offer_id}", response_class=HTMLResponse)
def offer_page(request: Request, offer_id: schemas.OfferId, sess: PageSession, who: Viewer):
    """One offer: reason, price, value, evidence, consent; approve (with edits) or reject."""
    require(who, "offers:read")
    return offer_view(request, sess, who, get_visible_offer(sess, offer_id, who))


def offer_view(
    request: Request,
    sess: Session,
    who: Principal,
    offer: Offer,
    *,
    approve_form: dict[str, str] | None = None,
    problem: str | None = None,
    status_code: int = 422,
) -> HTMLResponse:
    """The offer page; after a refused approval (422, or 409 as the API answers a conflict), its form holds
    what was sent, the message says why."""
    history = _history(sess, "offer", offer.id)
    sees_risk = risk_scope(sess, who).sees(offer.customer_id)
    # The alert as it is now: only for who may open it (an account manager: with the `offers` grant).
    alert = sess.get(Alert, offer.alert_id) if offer.alert_id and sees_risk else None
    machine = sess.get(Machine, offer.machine_id)
    places = catalog.decimals(offer.currency)
    context = {
        "who": who,
        "offer": offer,
        "machine": machine,
        "specs": views.sensor_specs(sess, machine.machine_type),
        "customer": sess.get(Customer, offer.customer_id),
        "purposes": registry.purposes_of(sess, offer.customer_id),
        "alert": alert,
        "prediction": views.latest_prediction(sess, offer.machine_id) if sees_risk else None,
        # the estimate the offer was made on: the same words as its alert, machine page and CRM event
        "made_on": sess.get(Prediction, offer.prediction_id) if offer.prediction_id else None,
        "history": history,
        "names": views.user_names(sess, {e.actor_id for e in history} | {offer.decided_by}),
        "places": places,  # the money fields' decimals
        "approve_form": approve_form
        or {"title": offer.title, "price": f"{offer.price:.{places}f}", "reason": offer.reason},
    }
    if problem is None:
        return page(request, "offer.html", context)
    context["flash"] = {"kind": "error", "text": problem}
    return page(request, "offer.html", context, status_code=status_code)


@router.get("/accounts", response_class=HTMLResponse)
def accounts(request: Request, sess: PageSession, who: Viewer):
    """The accounts the caller looks after, with consent, machines at risk, open alerts and offers."""
    require(who, "fleet:read")
    customers = sess.scalars(restrict(select(Customer), Customer.id, who).order_by(Customer.name)).all()
    consent = registry.purposes_by_customer(sess, {c.id for c in customers})
    summary = views.account_summary(sess, who, [c.id for c in customers])
    context = {"who": who, "customers": customers, "consent": consent, "summary": summary}
    return page(request, "accounts.html", context)


@router.get("/accounts/{customer_id}", response_class=HTMLResponse)
def account_page(request: Request, customer_id: schemas.CustomerId, sess: PageSession, who: Viewer):
    """One account: consent state, machines by risk, open alerts and the offer history."""
    require(who, "fleet:read")
    customer = get_visible(sess, Customer, customer_id, who, "customer")
    rows = views.fleet_rows(sess, who, customer_id=customer.id)
    alerts = views.alert_rows(sess, who, states=OPEN_STATES, severity=None, customer_id=customer.id)
    shown = [r.machine for r in rows] + [m for _, m, *_ in alerts]
    context = {
        "who": who,
        "customer": customer,
        "purposes": registry.purposes_of(sess, customer.id),
        "rows": rows,
        "alerts": alerts,
        "names": views.assignee_names(sess, alerts),
        "offers": views.offer_rows(sess, who, states=views.ALL_OFFER_STATES, customer_id=customer.id)
        if has_right(who, "offers:read")
        else [],
        "type_specs": views.specs_by_type(sess, (m.machine_type for m in shown)),
    }
    return page(request, "account.html", context)


@router.get("/admin", response_class=HTMLResponse)
def admin(request: Request, sess: PageSession, who: Viewer):
    """Customers and their grants, users and roles, model versions with their figures."""
    return admin_page(request, sess, who)


def admin_page(  # noqa: ANN201
    request: Request,
    sess,  # noqa: ANN001
    who,  # noqa: ANN001
    new_key: dict | None = None,
    user_form: dict | None = None,
    status_code: int = 200,
):
    """The admin page, optionally showing a key just created (once)."""
    require(who, "admin")
    customers = sess.scalars(select(Customer).order_by(Customer.name)).all()
    versions = model_versions.list_versions(request.app.state.engine)
    users = sess.scalars(select(User).order_by(User.role, User.name)).all()
    active_keys = dict(
        sess.execute(
            select(ApiKey.user_id, func.count()).where(ApiKey.revoked_at.is_(None)).group_by(ApiKey.user_id)
        ).all()
    )
    accounts: dict[int, list[Customer]] = {}
    by_id = {c.id: c for c in customers}
    for user_id, customer_id in sess.execute(
        select(AccountAssignment.user_id, AccountAssignment.customer_id)
    ):
        if customer_id in by_id:  # an assignment committed after the customers were read waits a reload
            accounts.setdefault(user_id, []).append(by_id[customer_id])
    context = {
        "who": who,
        "customers": customers,
        "consent": registry.purposes_by_customer(sess, {c.id for c in customers}),
        "assumed": registry.assumed_by_customer(sess, {c.id for c in customers}),
        "unfinished": erasure.to_finish(sess.connection(), customers),
        "users": users,
        "active_keys": active_keys,
        "accounts": accounts,
        "customers_by_id": by_id,
        "versions": versions,
        "figures": {
            v.version: _figures(v.metrics, policy.alert_threshold(sess, v.version)) for v in versions
        },
        "comparisons": {v.version: _comparison(v) for v in versions},
        "new_key": new_key,
        "user_form": user_form or {"values": {}, "errors": {}},
    }
    return page(request, "admin.html", context, status_code=status_code)


def _figures(metrics: dict, threshold: float) -> list[str]:
    """A model version's alert figures on its training window, in words, and the threshold at which the
    policy opens alerts for its predictions."""
    alerts = metrics.get("train_alerts") or {}
    precursor = alerts.get("precursor") or {}
    figures = [
        ("recall ≥ 24 h ahead", precursor.get("recall_min_lead"), "{:.2f}".format),
        ("precision", alerts.get("precision"), "{:.2f}".format),
        # A visit without finding within the horizon, no failure: out of precision and false alarms.
        ("unjudged alerts", alerts.get("unjudged_alerts"), str),
        ("false alarms per machine-month", alerts.get("false_alarms_per_machine_month"), "{:.3f}".format),
        ("median lead", precursor.get("median_lead_hours"), "{:.0f} h".format),
        ("alert threshold", threshold, display.percent),
    ]
    return [f"{name} {fmt(value)}" for name, value, fmt in figures if isinstance(value, int | float)]


def _comparison(v: model_versions.VersionInfo) -> str:
    """Champion/challenger figures stored with the version, in words."""
    if v.kind == "cold_start":
        return f"cold start: no failure history yet ({v.metrics.get('failure_labels', 0)} failure labels)"
    c = v.comparison
    if not c:
        return ""
    champ = c["champion"]
    text = f"{c['metric'].replace('_', ' ')} {c['candidate']['f1']:.2f}"
    text += " (no champion)" if champ is None else f" vs {champ['f1']:.2f} of {champ['version']}"
    text += f", {c['window']['start'][:10]} – {c['window']['end'][:10]}"
    if (unjudged := champion.unjudged(c)) is not None:
        text += f", {unjudged}"
    verdict = "at least as good" if c["at_least_as_good"] else "worse: refused"
    verdict = "no failure in the window: refused" if c.get("evidence") is False and champ else verdict
    verdict = "worse: activated by --force" if c.get("forced") else verdict
    return f"{text} · {verdict}"


def _history(sess, subject: str, subject_id: int) -> list[WorkflowEvent]:  # noqa: ANN001
    query = select(WorkflowEvent).where(
        WorkflowEvent.subject == subject, WorkflowEvent.subject_id == subject_id
    )
    return sess.scalars(query.order_by(WorkflowEvent.id)).all()
