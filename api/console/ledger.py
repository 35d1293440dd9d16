"""The ledger people look at: per account and period, and for the whole book; a monthly chart; CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import catalog, catalog_versions, schemas
from api.auth import Principal
from api.console.charts import _ticks
from api.console.ledger_figures import Figures, by_account_and_month
from api.console.login import PageSession, Viewer, require
from api.console.render import PAGE_HEADERS, PageRoute, page
from api.offers import risk_scope
from api.scope import get_visible, restrict
from fleet import errors
from fleet.spreadsheet_cells import as_text
from fleet.tables import Customer

router = APIRouter(route_class=PageRoute, include_in_schema=False)
MAX_DAYS = 3660  # ten years: the monthly chart stays readable
LAST_DAY = date(9999, 11, 30)  # the period's next day and the chart's next month still exist
CSV_COLUMNS = (
    "account",
    "start",
    "end",
    "alerts",
    "confirmed_failures",
    "no_fault_found",
    "no_fault_found_rate",
    "offers_proposed",
    "offers_approved",
    "offers_sent",
    "offers_won",
    "offers_lost",
    "acceptance_rate",
    "revenue",
    "downtime_avoided_hours",
    "downtime_avoided_cost",
    "currency",
)

Day = Annotated[date | None, Query()]


@dataclass
class Row:
    """One line of the ledger: an account (or the total) and its figures; alert figures may be hidden, and
    the counts of offers proposed and approved (a customer is shown only the offers sent to it)."""

    key: str
    name: str
    figures: Figures
    alerts_hidden: bool = False
    unsent_hidden: bool = False


@dataclass
class Ledger:
    """A ledger page's content."""

    start: date
    end: date
    rows: list[Row]
    total: Row
    months: dict[date, Figures]
    currency: str


def _period(request: Request, start: date | None, end: date | None) -> tuple[date, date]:
    """The period asked for (both days included); by default the last twelve calendar months to today."""
    end = end or request.app.state.clock().astimezone(UTC).date()
    if start is None:
        months = end.year * 12 + end.month - 1 - 11
        start = date(months // 12, months % 12 + 1, 1)
    if start > end:
        raise errors.InvalidInput("the period's start must not be after its end")
    if end > LAST_DAY:
        raise errors.InvalidInput(f"a period must end by {LAST_DAY}")
    if (end - start).days > MAX_DAYS:
        raise errors.InvalidInput(f"a period may span at most {MAX_DAYS} days")
    return start, end


def build(sess: Session, who: Principal, customers: list[Customer], start: date, end: date) -> Ledger:
    """The ledger of these customers (already in the caller's scope) over the period."""
    since = datetime.combine(start, time(), UTC)
    until = datetime.combine(end + timedelta(days=1), time(), UTC)
    cat = catalog_versions.in_force(sess)
    found = by_account_and_month(sess, [c.id for c in customers], since, until, cat)
    # An account manager sees no alert or risk figure of a customer who has not granted `offers`.
    scope = risk_scope(sess, who)
    per_account = {c.id: Figures() for c in customers}
    months: dict[date, Figures] = {}
    for (customer_id, month), fig in found.items():
        per_account[customer_id] += fig
        shown = fig if scope.sees(customer_id) else _without_alerts(fig)
        months.setdefault(month, Figures()).__iadd__(shown)
    unsent = who.role == "customer"
    rows = [Row(str(c.id), c.name, per_account[c.id], not scope.sees(c.id), unsent) for c in customers]
    total = Figures()
    for row in rows:
        total += _without_alerts(row.figures) if row.alerts_hidden else row.figures
    hidden = bool(rows) and all(r.alerts_hidden for r in rows)
    return Ledger(
        start,
        end,
        rows,
        Row("total", "All accounts shown", total, hidden, unsent),
        months,
        cat.currency,
    )


def _without_alerts(fig: Figures) -> Figures:
    kept = ("proposed", "approved", "sent", "won", "lost", "revenue")
    return Figures(**{name: getattr(fig, name) for name in kept})


def _visible_customers(sess: Session, who: Principal, account: int | None) -> list[Customer]:
    if account is not None:
        return [get_visible(sess, Customer, account, who, "customer")]
    return list(sess.scalars(restrict(select(Customer), Customer.id, who).order_by(Customer.name)))


@router.get("/ledger", response_class=HTMLResponse)
def book(request: Request, sess: PageSession, who: Viewer, start: Day = None, end: Day = None):
    """The whole book the caller may see: one row per account, the total (of several), the months."""
    require(who, "offers:read")
    start, end = _period(request, start, end)
    ledger = build(sess, who, _visible_customers(sess, who, None), start, end)
    return page(request, "ledger.html", _context(who, ledger, None))


@router.get("/ledger/{customer_id}", response_class=HTMLResponse)
def account(
    request: Request,
    customer_id: schemas.CustomerId,
    sess: PageSession,
    who: Viewer,
    start: Day = None,
    end: Day = None,
):
    """One account's ledger over the period."""
    require(who, "offers:read")
    start, end = _period(request, start, end)
    customers = _visible_customers(sess, who, customer_id)
    return page(request, "ledger.html", _context(who, build(sess, who, customers, start, end), customers[0]))


@router.get("/ledger.csv")
def export(
    request: Request,
    sess: PageSession,
    who: Viewer,
    start: Day = None,
    end: Day = None,
    account: schemas.CustomerFilter = None,
) -> Response:
    """The ledger as CSV: the rows of the page (the total last when it sums several), plain numbers."""
    require(who, "offers:read")
    start, end = _period(request, start, end)
    ledger = build(sess, who, _visible_customers(sess, who, account), start, end)
    out = io.StringIO()
    # RFC 4180 line ends: the writer then quotes a CR inside a name too, so it cannot start a new row.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in ledger.rows + ([ledger.total] if shows_total(ledger) else []):
        writer.writerows(_csv_rows(row, ledger))
    name = f"ledger-{account or 'book'}-{start}-{end}.csv"
    headers = {**PAGE_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _csv_rows(row: Row, ledger: Ledger) -> list[list[str]]:
    """The row's line with its revenue in the catalog's currency, then a line per other currency won in,
    with its revenue only: a column's sum then counts each offer once and adds no two currencies."""
    first, *others = row.figures.revenue_lines(ledger.currency)
    lines = [_csv_row(row, ledger, first)]
    for currency, amount in others:
        only = {"account": as_text(row.name), "start": str(ledger.start), "end": str(ledger.end)}
        only |= {"revenue": f"{amount:.2f}", "currency": currency}
        lines.append([only.get(column, "") for column in CSV_COLUMNS])
    return lines


def _csv_row(row: Row, ledger: Ledger, revenue: tuple[str, float]) -> list[str]:
    f, hide = row.figures, row.alerts_hidden

    def alert(value: float | None, fmt: str = "{}") -> str:
        return "" if hide or value is None else fmt.format(value)

    def unsent(value: int) -> str:
        return "" if row.unsent_hidden else str(value)

    return [
        as_text(row.name),
        str(ledger.start),
        str(ledger.end),
        alert(f.alerts),
        alert(f.confirmed),
        alert(f.no_fault),
        alert(f.no_fault_rate, "{:.4f}"),
        unsent(f.proposed),
        unsent(f.approved),
        str(f.sent),
        str(f.won),
        str(f.lost),
        "" if f.acceptance is None else f"{f.acceptance:.4f}",
        f"{revenue[1]:.2f}",
        alert(f.downtime_hours, "{:.1f}"),
        alert(f.downtime_cost, "{:.2f}"),
        as_text(revenue[0]),
    ]


def shows_total(ledger: Ledger) -> bool:
    """Whether a ledger ends with its total: only when it sums several accounts (over one it repeats the
    row: one account's page, a customer's own account, an account manager's only one)."""
    return len(ledger.rows) > 1


def _context(who: Principal, ledger: Ledger, customer: Customer | None) -> dict:
    query = f"start={ledger.start}&end={ledger.end}"
    return {
        "who": who,
        "ledger": ledger,
        "customer": customer,
        "total": shows_total(ledger),
        "action": "/ledger" if customer is None else f"/ledger/{customer.id}",
        "csv": f"/ledger.csv?{query}" + ("" if customer is None else f"&account={customer.id}"),
        "chart": month_chart(ledger),
        "chart_title": chart_title(ledger),
        "section": "ledger",
    }


# As wide as the page at 1366 px and low, so the bars read at the text size of the table above them.
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 1280, 240, 78, 34, 16
SERIES = (("revenue", "Revenue won", "#2f6f4f"), ("downtime_cost", "Downtime avoided", "#4a6fa5"))


def _chart_amounts(fig: Figures, currency: str) -> dict[str, float]:
    """A month's bars: what was won and what downtime was avoided, both in the catalog's currency."""
    return {"revenue": fig.revenue.get(currency, 0.0), "downtime_cost": fig.downtime_cost}


def chart_title(ledger: Ledger) -> str:
    """What the month chart shows, in which currency."""
    title = f"Revenue won and downtime avoided per month, {ledger.currency}"
    others = sorted({c for f in ledger.months.values() for c in f.revenue} - {ledger.currency})
    return title + (f" (revenue in {', '.join(others)}: in the table)" if others else "")


def month_chart(ledger: Ledger) -> Markup | None:
    """Revenue won and downtime avoided per month as bars, an SVG that keeps its aspect ratio; None when
    the period has neither, so the page says so instead of drawing an empty plot."""
    months, month = [], date(ledger.start.year, ledger.start.month, 1)
    while month <= ledger.end:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    values = {m: _chart_amounts(ledger.months.get(m, Figures()), ledger.currency) for m in months}
    top = max([amount for amounts in values.values() for amount in amounts.values()] + [0.0])
    if top <= 0:
        return None
    ticks = _ticks(0.0, top)
    high = max(ticks[-1], top) or 1.0
    plot_w, plot_h = WIDTH - LEFT - 10, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(months)
    bar = slot * 0.8 / len(SERIES)
    title = chart_title(ledger)
    parts = [
        f'<svg class="ledger-chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in ticks:
        y = TOP + plot_h * (1 - tick / high)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d9dde3"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#555">'
            f"{tick:,.0f}</text>"
        )
    label_every = max(1, len(months) // 12)
    for i, m in enumerate(months):
        x0 = LEFT + i * slot + slot * 0.1
        for j, (key, label, colour) in enumerate(SERIES):
            value = values[m][key]
            h = plot_h * value / high
            parts.append(
                f'<rect class="bar-{key}" data-month="{m:%Y-%m}" x="{x0 + j * bar:.1f}" '
                f'y="{TOP + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(label)}, {m:%b %Y}: {escape(catalog.format_money(value, ledger.currency))}"
                "</title></rect>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text x="{LEFT + (i + 0.5) * slot:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                f'font-size="11" fill="#555">{m:%b %y}</text>'
            )
    for j, (_, label, colour) in enumerate(SERIES):
        x = LEFT + j * 180
        parts.append(
            f'<rect x="{x}" y="{HEIGHT - 12}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 3}" font-size="11" fill="#333">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
