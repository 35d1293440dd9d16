"""Time-series charts drawn on the server as inline SVG: no chart library, no script, fast to paint."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 14, 30
DOT_POINTS = 60


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if 1e4 <= abs(value) < 1e15 else f"{value:.3g}"


@dataclass
class Line:
    """One series: (time, value) points; None leaves a gap."""

    label: str
    points: Sequence[tuple[datetime, float | None]]
    css: str = "series"


@dataclass
class Forecast:
    """A projection from the last level to the limit, reached at `eta` (80 % band `low`..`high`)."""

    start: datetime
    value: float
    eta: datetime
    low: datetime
    high: datetime


@dataclass
class Chart:
    """What to draw; `limit` is a horizontal line (a sensor limit or an alert threshold)."""

    title: str
    lines: list[Line]
    start: datetime
    end: datetime
    unit: str = ""
    limit: float | None = None
    limit_label: str = "limit"
    forecast: Forecast | None = None
    y_range: tuple[float, float] | None = None
    marks: list[tuple[datetime, str]] = field(default_factory=list)
    width: int = WIDTH
    value_format: Callable[[float], str] = _fmt  # the y axis's numbers, e.g. a risk as `90 %`


# Values up to ±1.8e308 are finite, but their differences are not: ranges are computed on halves.
_MAX = sys.float_info.max


def _nice_range(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if math.isclose(low, high):
        pad = abs(low) * 0.05 or 1.0
    else:
        pad = (high / 2 - low / 2) * 0.16
    return max(low - pad, -_MAX), min(high + pad, _MAX)


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    step = (high / 2 - low / 2) / count * 2
    if not step > 0 or not math.isfinite(low / step):
        return []
    magnitude = 10 ** math.floor(math.log10(step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(count + 2) if first + i * step <= high]


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def render(chart: Chart) -> Markup:
    """The chart as an accessible SVG element that scales to its container."""
    # A limit or forecast computed from extreme readings may have overflowed: it is left out.
    chart = replace(
        chart,
        limit=chart.limit if _finite(chart.limit) else None,
        forecast=chart.forecast if chart.forecast is not None and _finite(chart.forecast.value) else None,
    )
    end = chart.end
    if chart.forecast is not None:
        end = max(end, chart.forecast.high)
    span = max((end - chart.start).total_seconds(), 1.0)
    width = chart.width
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [v for line in chart.lines for _, v in line.points if _finite(v)]
    if chart.limit is not None:
        values.append(chart.limit)
    if chart.forecast is not None:
        values.append(chart.forecast.value)
    low, high = chart.y_range or (_nice_range(values) if values else (0.0, 1.0))

    def x(t: datetime) -> float:
        return LEFT + (t - chart.start).total_seconds() / span * plot_w

    half_span = high / 2 - low / 2 or 1.0

    def y(v: float) -> float:
        return TOP + (high / 2 - v / 2) / half_span * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {HEIGHT}" role="img" '
        f'aria-label="{escape(chart.title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(chart.title)}</title>",
        f"<desc>{escape(_describe(chart, values))}</desc>",
        f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>',
    ]
    for tick in _ticks(low, high):
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
        )
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
            f"{chart.value_format(tick)}</text>"
        )
    fmt = "%d %b" if span > 2 * 86400 else "%H:%M"
    for i in range(6):
        t = chart.start + (end - chart.start) * (i / 5)
        anchor = "start" if i == 0 else "end" if i == 5 else "middle"
        parts.append(
            f'<text class="tick" x="{x(t):.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}">'
            f"{t.strftime(fmt)}</text>"
        )
    if chart.forecast is not None and chart.limit is not None:
        f = chart.forecast
        parts.append(
            f'<polygon class="band" points="{x(f.start):.1f},{y(f.value):.1f} '
            f'{x(f.low):.1f},{y(chart.limit):.1f} {x(f.high):.1f},{y(chart.limit):.1f}">'
            "<title>80 % band of the crossing time</title></polygon>"
        )
        parts.append(
            f'<line class="forecast" x1="{x(f.start):.1f}" y1="{y(f.value):.1f}" x2="{x(f.eta):.1f}" '
            f'y2="{y(chart.limit):.1f}"/>'
        )
        parts.append(f'<circle class="eta" cx="{x(f.eta):.1f}" cy="{y(chart.limit):.1f}" r="4"/>')
    if chart.limit is not None and low <= chart.limit <= high:
        ly = y(chart.limit)
        parts.append(f'<line class="limit" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{ly:.1f}" y2="{ly:.1f}"/>')
        parts.append(
            f'<text class="limit-label" x="{LEFT + 4}" y="{ly - 4:.1f}">{escape(chart.limit_label)}</text>'
        )
    for when, text in chart.marks:
        if chart.start <= when <= end:
            parts.append(
                f'<line class="mark" x1="{x(when):.1f}" x2="{x(when):.1f}" y1="{TOP}" y2="{TOP + plot_h}">'
                f"<title>{escape(text)}</title></line>"
            )
    for line in chart.lines:
        path = _path(line.points, x, y)
        finite = [(t, v) for t, v in line.points if _finite(v)]
        if len(finite) <= DOT_POINTS:  # sparse series (e.g. a few predictions) show as dots too
            parts.extend(
                f'<circle class="dot {escape(line.css)}" cx="{x(t):.1f}" cy="{y(v):.1f}" r="3"/>'
                for t, v in finite
            )
        if path:
            parts.append(
                f'<path class="{escape(line.css)}" d="{path}"><title>{escape(line.label)}</title></path>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def _path(points: Sequence[tuple[datetime, float | None]], x, y) -> str:  # noqa: ANN001
    out, pen_down = [], False
    for t, v in points:
        if not _finite(v):
            pen_down = False
            continue
        out.append(f"{'L' if pen_down else 'M'}{x(t):.1f} {y(v):.2f}")
        pen_down = True
    return "".join(out)


def _describe(chart: Chart, values: list[float]) -> str:
    n = sum(len(line.points) for line in chart.lines)
    text = f"{n} points from {chart.start:%Y-%m-%d %H:%M} to {chart.end:%Y-%m-%d %H:%M} UTC"
    shown = chart.value_format
    if values:
        text += f", values {shown(min(values))} to {shown(max(values))} {chart.unit}".rstrip()
    if chart.limit is not None:
        at = shown(chart.limit)
        # a label such as `alert threshold 90 %` already says where the line is
        text += f"; {chart.limit_label}" + ("" if chart.limit_label.endswith(at) else f" at {at}")
    if chart.forecast is not None:
        text += f"; expected to reach it {chart.forecast.eta:%Y-%m-%d %H:%M} UTC"
    return text
