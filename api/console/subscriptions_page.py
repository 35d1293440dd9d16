"""Console page of alert notification subscriptions: list, add and delete one's own (an admin: anyone's).

It calls `api.notifications`, as the API's /notifications/subscriptions routes do, so the checks (which
customers and sites the caller may name) are one.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select

from api import notification_failures, notifications
from api.console import views
from api.console.login import Actor, PageSession, Viewer, require
from api.console.render import PageRoute, confirm_page, page, redirect
from api.errors import ConsentMissing
from api.offers import risk_scope
from api.schemas import SubscriptionId, SubscriptionIn
from api.scope import restrict
from fleet import errors
from fleet.redaction import redact_url
from fleet.tables import Customer, Site

router = APIRouter(route_class=PageRoute, include_in_schema=False)
_subscription = TypeAdapter(SubscriptionIn)
ADDRESS_PROBLEM = {
    "email": "An e-mail address, e.g. tech@example.com.",
    "webhook": "The incoming webhook's address, starting with https:// (or http://).",
}
RE_ENTER = "Enter the part shown as *** again: a secret is not sent back to the page."


def subscriptions_page(request: Request, sess, who, *, form: dict | None = None, status_code: int = 200):  # noqa: ANN001, ANN201
    """The caller's subscriptions (an admin: everyone's) and the form to add one."""
    require(who, "alerts:read")
    subs = notifications.subscriptions_of(sess, who)
    customers = sess.scalars(restrict(select(Customer).order_by(Customer.name), Customer.id, who)).all()
    sites = sess.scalars(restrict(select(Site).order_by(Site.name), Site.customer_id, who)).all()
    scope = risk_scope(sess, who)  # the form offers the customers whose alerts the caller reads
    settings = request.app.state.settings
    context = {
        "who": who,
        "section": "notifications",
        "subs": subs,
        "users": views.user_names(sess, {s.user_id for s in subs}),
        "addresses": {s.id: notifications.shown_address(s) for s in subs},
        "suspended": notifications.suspended(sess, subs),
        "failing": notification_failures.problems(sess, subs, max_attempts=settings.route_max_attempts),
        "customers": [c for c in customers if scope.sees(c.id)],
        "customer_names": {c.id: c.name for c in customers},
        "sites": [s for s in sites if scope.sees(s.customer_id)],
        "site_names": {s.id: s.name for s in sites},
        "form": form or {"values": {"min_severity": "critical", "channel": "email"}, "errors": {}},
        "email_unsent": notifications.unsent(settings, "email"),
    }
    return page(request, "subscriptions.html", context, status_code=status_code)


@router.get("/notifications", response_class=HTMLResponse)
def show(request: Request, sess: PageSession, who: Viewer):
    """Who is told of which alerts, and how."""
    return subscriptions_page(request, sess, who)


@router.post("/notifications")
def add(
    request: Request,
    sess: PageSession,
    who: Actor,
    channel: Annotated[Literal["email", "webhook"], Form()],
    min_severity: Annotated[Literal["medium", "high", "critical"], Form()] = "critical",
    customer_id: Annotated[str, Form(max_length=12)] = "",
    site_id: Annotated[str, Form(max_length=12)] = "",
    address: Annotated[str, Form(max_length=500)] = "",
):
    """Subscribe the caller to alerts of a customer and/or site from a severity up, by e-mail or webhook."""
    require(who, "alerts:read")
    values = {
        "channel": channel,
        "min_severity": min_severity,
        "customer_id": customer_id,
        "site_id": site_id,
        "address": address.strip(),
    }
    try:
        body = _subscription.validate_python(
            values | {"customer_id": _form_id(customer_id), "site_id": _form_id(site_id)}
        )
    except ValidationError as exc:
        problems = {str(e["loc"][1]) if len(e["loc"]) > 1 else "address": e["msg"] for e in exc.errors()}
        if "address" in problems:
            problems["address"] = ADDRESS_PROBLEM[channel]
        return _refused(request, sess, who, values, problems)
    try:
        sub, added = notifications.subscribe(sess, who, body, settings=request.app.state.settings)
    except errors.InvalidInput as exc:  # an address the router would refuse, a site not the customer's
        field, _, said = str(exc).partition(": ")
        return _refused(request, sess, who, values, {field if field in values else "address": said})
    except ConsentMissing as exc:  # an account of his whose alerts he may not read
        field = "site_id" if site_id and not customer_id else "customer_id"
        return _refused(request, sess, who, values, {field: str(exc)})
    to = notifications.shown_address(sub)
    done = "Subscribed" if added else "Already subscribed"
    said = f"{done}: {sub.min_severity} alerts and up, by {sub.channel} to {to}."
    unsent = notifications.unsent(request.app.state.settings, sub.channel)
    return redirect("/notifications", f"{said} {unsent}" if unsent else said)


def _refused(request: Request, sess, who, values: dict, problems: dict) -> HTMLResponse:  # noqa: ANN001
    """The page again (422) with the form as sent for correcting, its address's secret masked as the API's
    422 masks it (`redact_url`): the page would otherwise carry the secret back, into caches and history."""
    shown = redact_url(values["address"])
    if shown != values["address"]:
        said = problems.get("address")
        problems = problems | {"address": f"{said.rstrip('.')}. {RE_ENTER}" if said else RE_ENTER}
    form = {"values": values | {"address": shown}, "errors": problems}
    return subscriptions_page(request, sess, who, form=form, status_code=422)


def _form_id(text: str) -> int | str | None:
    """A form's id as the body's JSON integer (a form sends text); other text is for the body to refuse."""
    return int(text) if text.isascii() and text.isdigit() else text or None


@router.post("/notifications/{subscription_id}/delete")
def delete(
    request: Request,
    subscription_id: SubscriptionId,
    sess: PageSession,
    who: Actor,
    confirmed: Annotated[str, Form(max_length=3)] = "",
):
    """Delete a subscription, once confirmed; its notifications not yet sent are not sent."""
    require(who, "alerts:read")
    if confirmed != "yes":
        shown = notifications.subscriptions_of(sess, who)
        sub = next((s for s in shown if s.id == subscription_id), None)
        if sub is not None:
            return confirm_page(
                request,
                title=f"Stop notifications to {notifications.shown_address(sub)}?",
                detail=f"Subscription {sub.id} ({sub.min_severity} alerts and up, by {sub.channel}) is "
                "deleted; notifications of it not yet sent are not sent.",
                button="Yes, delete the subscription",
                fields={},
                back="/notifications",
            )
    sub = notifications.unsubscribe(sess, who, subscription_id)
    return redirect(
        "/notifications",
        f"Subscription {sub.id} deleted: no more notifications to {notifications.shown_address(sub)}.",
    )
