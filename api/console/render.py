"""Templates, flash messages, and the route class that turns domain errors into pages."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from api import catalog, connectivity, estimate
from api.console import sessions
from api.deps import has_right
from api.errors import Forbidden, log_fault
from fleet import display, errors
from fleet.display import percent
from fleet.machine_types import SensorSpec
from models import modes, statuses

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
FLASH_COOKIE = "servicecast_flash"
# Pages carry no script and load only our own stylesheet; nobody may frame them; nothing is cached.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginRequired(Exception):
    """No session cookie: the caller goes to the login page."""


class SessionEnded(LoginRequired):
    """A session cookie whose session was ended, expired or its key revoked: a 401 login page."""


def _hours(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} h" if value < 72 else f"{value / 24:.1f} d"


def _money(value: float | None, currency: str | None) -> str:
    """An amount in its currency, which every page names (the offer's, the catalog's): an amount whose
    currency is unknown is shown without one, never in a currency it may not be in."""
    if value is None:
        return "—"
    if not currency:
        return f"{value:,.2f} (currency unknown)"
    return catalog.format_money(value, currency)


def label_words(value: str | None) -> str:
    """An internal word as a reader reads it: `product_improvement` → `product improvement`."""
    return "—" if not value else value.replace("_", " ")


def _labels(values: Iterable[str], empty: str = "—") -> str:
    """Internal words as a reader reads them, in the given order: `product_improvement, service`."""
    return ", ".join(label_words(v) for v in values) or empty


def sensor_label(name: str | None, specs: Mapping[str, SensorSpec] | None = None) -> str:
    """A sensor as a technician reads it: its type's display name and unit, e.g. `bearing temperature (°C)`.

    A sensor its type does not describe is spelled out (`coolant_temp_c` → `coolant temp c`)."""
    if not name:
        return "—"
    spec = (specs or {}).get(name)
    return spec.label if spec is not None else label_words(name)


def time_to_failure(prediction, now: datetime) -> Markup:  # noqa: ANN001
    """The prediction's time-to-failure estimate, worded as everywhere else, marked up for the page."""
    if prediction is None:
        return Markup('<span class="muted">—</span>')
    found = estimate.of(prediction)
    expected = "" if found is None else estimate.stamp(found.expected)
    css = "ttf overdue" if found is not None and found.overdue(now) else "ttf"
    text = escape(estimate.words_of(prediction, now))
    return Markup(f'<span class="{css}" data-expected="{expected}">{text}</span>')


def link_state(found: connectivity.Connectivity) -> Markup:
    """A machine's connectivity as a badge, worded as on every page."""
    css = "link-" + found.state.replace(" ", "-")
    return Markup(f'<span class="badge {css}">{escape(connectivity.words(found))}</span>')


templates.env.globals["ttf"] = time_to_failure
templates.env.globals["link_state"] = link_state
templates.env.filters.update(
    when=display.when,
    hours=_hours,
    money=_money,
    pct=percent,
    signed=display.signed,
    unusual=display.unusual,
    actor=display.actor,
    label=label_words,
    labels=_labels,
    sensor=sensor_label,
    failure=modes.name,
    also_possible=modes.also_possible,
)
templates.env.globals["can"] = has_right
templates.env.globals["made_by_failure_model"] = estimate.made_by_failure_model
# A risk no failure model made, by its prediction's status: pages say where it comes from, as explanations do.
templates.env.globals["risk_basis"] = {
    statuses.COLD_START_STATUS: display.NO_FAILURE_HISTORY,
    statuses.FALLBACK_STATUS: display.READINGS_ALONE,
}


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """Render a page, consuming the flash message set by the previous action."""
    flash = request.cookies.get(FLASH_COOKIE)
    csrf_token = getattr(request.state, "csrf_token", "")  # set with the caller by `login.viewer`
    context = {"who": None, "flash": _read_flash(flash), "csrf_token": csrf_token, **context}
    context.setdefault("now", request.app.state.clock())  # what "overdue" is judged against
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(PAGE_HEADERS)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def _read_flash(raw: str | None) -> dict | None:
    if not raw or ":" not in raw:
        return None
    kind, _, text = raw.partition(":")
    return {"kind": "error" if kind == "error" else "ok", "text": unquote(text)[:500]}


def redirect(url: str, message: str | None = None, *, error: bool = False) -> RedirectResponse:
    """303 to a page (Post/Redirect/Get), with a one-time message for it."""
    response = RedirectResponse(url, status_code=303)
    if message:
        value = f"{'error' if error else 'ok'}:{quote(message)}"
        response.set_cookie(FLASH_COOKIE, value, httponly=True, samesite="strict", path="/")
    return response


def _back(request: Request) -> str:
    """Where a failed form action returns: the page it was posted from, on this site only."""
    referer = request.headers.get("referer", "")
    origin = f"{request.url.scheme}://{request.url.netloc}"
    if referer.startswith(origin + "/"):
        return referer[len(origin) :]
    return request.url.path


def problem_text(exc: errors.ServicecastError | ValidationError | RequestValidationError) -> str:
    """What was wrong with a request, in one line for the page or form that made it."""
    return str(exc) if isinstance(exc, errors.ServicecastError) else _first_problem(exc)


def _first_problem(exc: ValidationError | RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    # pydantic prefixes a validator's own message with its exception's name
    what = str(first.get("msg", "invalid input")).removeprefix("Value error, ")
    return f"{label_words(where)}: {what}" if where else what


class PageRoute(APIRoute):
    """A console route: errors answer as pages (or as a message on the form's page), never as JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            try:
                return await handler(request)
            except SessionEnded:
                return session_ended(request, target if request.method == "GET" else "")
            except LoginRequired:
                return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            except errors.NotFound as exc:
                return error_page(request, 404, "Not found", str(exc))
            except Forbidden as exc:
                return error_page(request, 403, "Not allowed", str(exc))
            except errors.ArchiveUnreadable as exc:
                log_fault(request, exc)
                return error_page(request, 503, "Data unavailable", str(exc))
            except (errors.ServicecastError, ValidationError, RequestValidationError) as exc:
                text = problem_text(exc)
                if request.method == "POST":
                    return redirect(_back(request), text, error=True)
                return error_page(request, 400, "That did not work", text)
            except HTTPException as exc:  # e.g. 400 for a form field too large to parse
                title = "Not found" if exc.status_code == 404 else HTTP_WORDS_FALLBACK[0]
                return error_page(request, exc.status_code, title, str(exc.detail))

        return handle


def session_ended(request: Request, target: str) -> HTMLResponse:
    """The sign-in page with 401, for a cookie whose session is over; the browser forgets the cookie."""
    context = {
        "next": target,
        "error": "Your session has ended (signed out, timed out or revoked). Sign in again.",
    }
    response = page(request, "login.html", context, status_code=401)
    sessions.clear_cookie(response, request.app.state.settings)
    return response


def confirm_page(
    request: Request, *, title: str, detail: str, button: str, fields: Mapping[str, str], back: str
) -> HTMLResponse:
    """The second step of a destructive form: what will happen, and the same form again to confirm it."""
    context = {"title": title, "detail": detail, "button": button, "fields": fields, "back": back}
    context |= {"who": getattr(request.state, "principal", None), "action": request.url.path}
    return page(request, "confirm.html", context)


HTTP_WORDS = {
    404: ("Page not found", "No page has this address: check the link, or start from your home page."),
    405: (
        "That cannot be done from here",
        "This address only takes a form sent by the console (for example after a reload): "
        "go back to the page and use its buttons.",
    ),
}


HTTP_WORDS_FALLBACK = ("That did not work", "The console could not answer this request.")


def http_error_page(request: Request, status: int, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """An unknown address (404) or a method the address does not take (405), as a console page."""
    words = HTTP_WORDS.get(status, HTTP_WORDS_FALLBACK)
    title, detail = words
    response = error_page(request, status, title, detail)
    response.headers.update(headers or {})
    return response


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """A page that says what went wrong, in the console's frame."""
    who = getattr(request.state, "principal", None)
    context = {"who": who, "title": title, "detail": detail, "status": status}
    return page(request, "error.html", context, status_code=status)
