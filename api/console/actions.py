"""Console actions (POST forms): sign in and out, alert and offer workflow, consent, users, models.

Every action calls the same domain functions as the JSON API, so the rules and the audit log are one.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse
from pydantic import TypeAdapter, ValidationError

from api import alerts, audit, auth, events, offers, schemas
from api.console import sessions, views
from api.console.login import Actor, PageSession, SameSite, now, require, safe_next
from api.console.pages import admin_page, offer_view
from api.console.render import (
    FLASH_COOKIE,
    PageRoute,
    confirm_page,
    label_words,
    page,
    problem_text,
    redirect,
)
from api.errors import Conflict, ConsentMissing, status_of
from api.offers import revoke_consent
from api.scope import get_visible
from fleet import display, errors, registry
from fleet.tables import Alert, Customer, Offer, utcnow
from models import versions as model_versions

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Text = Annotated[str, Form(max_length=4000)]
# A destructive form comes back as a confirmation page unless it carries confirmed=yes.
Confirmed = Annotated[str, Form(max_length=3)]
_resolve = TypeAdapter(schemas.ResolveIn)


@router.post("/login", dependencies=[SameSite])
def login(
    request: Request,
    sess: PageSession,
    api_key: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=2000)] = "",
):  # noqa: A002
    """Check the key and start a server-side session; its random id goes into an HttpOnly cookie."""
    settings, at = request.app.state.settings, now(request)
    client = request.client.host if request.client else "unknown"
    wait = request.app.state.sign_ins.retry_after(client, at)
    if wait is not None:
        minutes = -(-wait // 60)
        context = {"next": next, "error": f"Too many failed sign-ins from your address: wait {minutes} min."}
        response = page(request, "login.html", context, status_code=429)
        response.headers["Retry-After"] = str(wait)
        return response
    found = auth.identify(sess, api_key.strip(), at)
    if found is None:
        request.app.state.sign_ins.failed(client, at)
        attempt = {"client": client, **_key_prefix(api_key)}
        audit.log_event(sess, "user", None, "sign_in_failed", None, attempt)
        context = {"next": next, "error": "That API key is unknown, expired or revoked."}
        return page(request, "login.html", context, status_code=401)
    principal, key_id = found
    session_id, _ = sessions.start(sess, key_id=key_id, settings=settings, now=at)
    audit.log_event(sess, "user", principal.user_id, "sign_in", principal, {"client": client})
    response = RedirectResponse(safe_next(next, principal), status_code=303)
    sessions.set_cookie(response, session_id, settings)
    return response


def _key_prefix(api_key: str) -> dict[str, str]:
    """The public part of a key-shaped string, to tell attempts on one key apart; never its secret."""
    parts = api_key.strip().split("_", 2)
    if len(parts) == 3 and parts[0] == auth.KEY_PREFIX and parts[1].isalnum() and len(parts[1]) <= 16:
        return {"key_prefix": parts[1]}
    return {}


@router.post("/logout")
def logout(request: Request, sess: PageSession, who: Actor):
    """End the session on the server, so its cookie is worthless wherever it was copied to."""
    settings = request.app.state.settings
    sessions.end(sess, request.cookies[sessions.cookie_name(settings)])
    response = RedirectResponse("/login", status_code=303)
    sessions.clear_cookie(response, settings)
    response.delete_cookie(FLASH_COOKIE, path="/")
    return response


@router.post("/alerts/{alert_id}/ack")
def acknowledge(alert_id: schemas.AlertId, sess: PageSession, who: Actor):
    """Acknowledge an open alert."""
    require(who, "alerts:write")
    alert = get_visible(sess, Alert, alert_id, who, "alert")
    alerts.acknowledge(sess, alert, who, utcnow())
    return redirect(f"/alerts/{alert.id}", f"Alert {alert.id} acknowledged.")


@router.post("/alerts/{alert_id}/assign")
def assign(
    alert_id: schemas.AlertId,
    sess: PageSession,
    who: Actor,
    assignee_id: Annotated[int, Form(ge=1, le=schemas.INT32_MAX)],
):
    """Send a technician."""
    require(who, "alerts:write")
    alert = get_visible(sess, Alert, alert_id, who, "alert")
    alerts.assign(sess, alert, assignee_id, who, utcnow())
    name = views.user_names(sess, {assignee_id}).get(assignee_id, assignee_id)
    return redirect(f"/alerts/{alert.id}", f"Alert {alert.id} assigned to {name}.")


@router.post("/alerts/{alert_id}/resolve")
def resolve(
    alert_id: schemas.AlertId,
    sess: PageSession,
    who: Actor,
    finding: Annotated[
        Literal["confirmed_fault", "replaced_before_failure", "no_fault_found", "other"], Form()
    ],
    text: Text = "",
    parts_used: Text = "",
    component: Annotated[str, Form(max_length=64)] = "",
    mode: Annotated[str, Form(max_length=64)] = "",
):
    """Close the alert with what the technician found (failure, worn part replaced, no fault found, other)."""
    require(who, "alerts:write")
    alert = get_visible(sess, Alert, alert_id, who, "alert")
    parts = [p.strip() for p in parts_used.replace("\n", ",").split(",") if p.strip()]
    body = _resolve.validate_python(
        {
            "finding": finding,
            "text": text.strip() or None,
            "parts_used": parts,
            "component": component.strip() or None,
            "mode": mode.strip() or None,
        }
    )
    alerts.resolve(sess, alert, **body.model_dump(), by=who, now=utcnow())
    return redirect(f"/alerts/{alert.id}", f"Alert {alert.id} resolved: {finding.replace('_', ' ')}.")


@router.post("/offers/{offer_id}/approve")
def approve(
    request: Request,
    offer_id: schemas.OfferId,
    sess: PageSession,
    who: Actor,
    price: Annotated[str, Form(max_length=32)] = "",
    title: Annotated[str, Form(max_length=400)] = "",
    reason: Text = "",
):
    """Approve, with the edits made in the form; the CRM hand-over is queued in the same commit."""
    require(who, "offers:write")
    offer = get_visible(sess, Offer, offer_id, who, "offer")
    try:
        edits = schemas.ApproveIn(
            price=price.strip() or None,
            title=title.strip() if title.strip() and title.strip() != offer.title else None,
            reason=reason.strip() if reason.strip() and reason.strip() != offer.reason else None,
        )
        if edits.price is not None and edits.price == offer.price:
            edits.price = None
        offers.approve(
            sess,
            offer,
            by=who,
            now=utcnow(),
            settings=request.app.state.settings,
            price=edits.price,
            title=edits.title,
            reason=edits.reason,
        )
    except (errors.InvalidInput, Conflict, ConsentMissing, ValidationError) as exc:
        sess.rollback()  # nothing of a refused approval is kept
        sent = {"title": title, "price": price, "reason": reason}
        offer = sess.get(Offer, offer_id)
        # A refusal the API answers 409 (over the contact limit, the offer closed) is a 409 here too.
        status = 422 if isinstance(exc, ValidationError) else status_of(exc)
        return offer_view(
            request, sess, who, offer, approve_form=sent, problem=problem_text(exc), status_code=status
        )
    if (warning := events.unsent(request.app.state.settings)) is not None:
        return redirect(f"/offers/{offer.id}", f"Offer {offer.id} approved. {warning}")
    return redirect(f"/offers/{offer.id}", f"Offer {offer.id} approved; it goes to the CRM.")


@router.post("/offers/{offer_id}/reject")
def reject(
    request: Request,
    offer_id: schemas.OfferId,
    sess: PageSession,
    who: Actor,
    reason: Text,
    confirmed: Confirmed = "",
):
    """Reject with a reason, once confirmed."""
    require(who, "offers:write")
    offer = get_visible(sess, Offer, offer_id, who, "offer")
    body = schemas.RejectIn(reason=reason.strip())
    if confirmed != "yes":
        return confirm_page(
            request,
            title=f"Reject offer {offer.id}?",
            detail=f"“{offer.title}” will not be sent to the customer. Reason: {body.reason}",
            button="Yes, reject the offer",
            fields={"reason": body.reason},
            back=f"/offers/{offer.id}",
        )
    offers.reject(sess, offer, by=who, now=utcnow(), reason=body.reason)
    return redirect(f"/offers/{offer.id}", f"Offer {offer.id} rejected.")


@router.post("/offers/{offer_id}/outcome")
def outcome(
    offer_id: schemas.OfferId,
    sess: PageSession,
    who: Actor,
    accepted: Annotated[Literal["yes", "no"], Form()],
    revenue: Annotated[str, Form(max_length=32)] = "",
):
    """Record the customer's answer and the revenue."""
    require(who, "offers:write")
    offer = get_visible(sess, Offer, offer_id, who, "offer")
    body = schemas.OutcomeIn(accepted=accepted == "yes", revenue=revenue.strip() or None)
    offers.record_outcome(sess, offer, by=who, now=utcnow(), accepted=body.accepted, revenue=body.revenue)
    return redirect(f"/offers/{offer.id}", f"Outcome of offer {offer.id} recorded: {offer.status}.")


@router.post("/customers/{customer_id}/grants/{purpose}")
def change_grant(
    customer_id: schemas.CustomerId,
    purpose: schemas.Purpose,
    sess: PageSession,
    who: Actor,
    action: Annotated[Literal["grant", "revoke"], Form()],
    request: Request,
    reference: Annotated[str, Form(max_length=200)] = "",
    confirmed: Confirmed = "",
):
    """Record or withdraw (once confirmed) a customer's consent; revoking `offers` withdraws offers."""
    require(who, "admin")
    customer = get_visible(sess, Customer, customer_id, who, "customer")
    if action == "revoke" and confirmed != "yes" and purpose != "service":
        consequence = (
            " Its open offers are withdrawn; the CRM is told, by ids only, of those it has."
            if purpose == "offers"
            else ""
        )
        return confirm_page(
            request,
            title=f"Stop using {customer.name}'s data for {label_words(purpose)}?",
            detail=f"The customer's declaration is withdrawn from now on.{consequence}",
            button="Yes, revoke the consent",
            fields={"action": "revoke", "reference": reference},
            back="/admin",
        )
    if action == "grant":
        registry.grant_purpose(
            sess, customer_id=customer.id, purpose=purpose, by=who, reference=reference.strip() or None
        )
        return redirect(
            "/admin", f"{customer.name} now allows its data to be used for {label_words(purpose)}."
        )
    withdrawn = revoke_consent(sess, customer.id, purpose, who, reference=reference.strip() or None)
    return redirect(
        "/admin",
        f"{customer.name} no longer allows its data to be used for {label_words(purpose)}; "
        f"{display.count(withdrawn, 'open offer')} withdrawn.",
    )


@router.post("/admin/users")
def add_user(
    request: Request,
    sess: PageSession,
    who: Actor,
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=32)] = "",
    customer: Annotated[str, Form(max_length=64)] = "",
    accounts: Annotated[str, Form(max_length=2000)] = "",
    email: Annotated[str, Form(max_length=320)] = "",
):
    """Create a user and show its API key once; a problem is named beside its field, the input kept."""
    require(who, "admin")
    values = {"name": name, "role": role, "customer": customer, "accounts": accounts, "email": email}
    problems = _user_form_problems(values)
    if not problems:
        tenants = (
            tuple(t.strip() for t in accounts.split(",") if t.strip()) if role == "account_manager" else ()
        )
        try:
            user, key = auth.create_user(
                engine=request.app.state.engine,
                name=name.strip(),
                role=role,
                customer=customer.strip() or None,
                accounts=tenants,
                email=email.strip() or None,
                by=who,
            )
        except errors.AlreadyExists:
            problems["name"] = f"A user named {name.strip()} exists already: choose another name."
        except errors.NotFound as exc:  # an unknown customer or account
            problems["customer" if role == "customer" else "accounts"] = f"{str(exc).capitalize()}."
        except errors.InvalidInput as exc:
            problems["email" if "mail" in str(exc) else "name"] = f"{str(exc).capitalize()}."
    sess.commit()  # end the page's read snapshot so the list shows the new user
    if problems:
        return admin_page(
            request, sess, who, user_form={"values": values, "errors": problems}, status_code=422
        )
    # Rendered, not redirected: the key must not travel in a cookie or a URL.
    return admin_page(request, sess, who, new_key={"name": user.name, "role": user.role, "key": key})


def _user_form_problems(values: dict[str, str]) -> dict[str, str]:
    """What is missing or wrong in the add-user form, in words, by field."""
    problems = {}
    if not values["name"].strip():
        problems["name"] = "Give the user a name."
    if values["role"] not in auth.ROLES:
        problems["role"] = "Choose one of the roles."
    if values["role"] == "customer" and not values["customer"].strip():
        problems["customer"] = "A customer's user needs its customer: the tenant id, e.g. acme."
    if values["role"] == "account_manager" and not values["accounts"].strip():
        problems["accounts"] = "An account manager needs at least one account: tenant ids, e.g. acme, globex."
    return problems


# `path`: a user's name may hold a slash ("Service/Nord"), which the admin page's link keeps as it is.
@router.post("/admin/users/{name:path}/revoke")
def revoke_user_keys(request: Request, name: str, who: Actor, confirmed: Confirmed = ""):
    """Revoke every key of a user, once confirmed."""
    require(who, "admin")
    if confirmed != "yes":
        return confirm_page(
            request,
            title=f"Revoke every API key of {name}?",
            detail=f"{name} is signed out everywhere and can sign in again only with a new key.",
            button="Yes, revoke the keys",
            fields={},
            back="/admin",
        )
    count = auth.revoke_keys(engine=request.app.state.engine, name=name, by=who)
    return redirect("/admin", f"{count} API keys of {name} revoked.")


@router.post("/admin/models/{version}/promote")
def promote(request: Request, version: str, who: Actor):
    """Make a model version the active one of its machine type."""
    require(who, "admin")
    try:
        info = model_versions.promote(request.app.state.engine, version, by=who)
    except model_versions.ModelNotFound as exc:
        raise errors.NotFound(str(exc)) from None
    return redirect("/admin", f"Model {info.version} is now active for {info.machine_type}.")


@router.post("/admin/models/{machine_type}/rollback")
def rollback(request: Request, machine_type: Annotated[str, Path(max_length=64)], who: Actor):
    """Re-activate the version promoted before the active one of a machine type."""
    require(who, "admin")
    try:
        info = model_versions.rollback(request.app.state.engine, machine_type, by=who)
    except model_versions.ModelNotFound as exc:
        raise errors.NotFound(str(exc)) from None
    return redirect("/admin", f"Model {info.version} is active again for {info.machine_type}.")
