"""Server-drawn SVG charts: gaps, sparse series, limit and forecast, and an accessible description."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from api.console import charts

START = datetime(2026, 11, 1, tzinfo=UTC)


def _points(values: list[float | None]) -> list[tuple[datetime, float | None]]:
    return [(START + timedelta(hours=i), v) for i, v in enumerate(values)]


def test_missing_values_break_the_line_instead_of_joining_across_the_gap() -> None:
    values = [float(i) for i in range(100)]
    values[40:45] = [None] * 5
    svg = charts.render(
        charts.Chart("vibration", [charts.Line("v", _points(values))], START, START + timedelta(hours=99))
    )
    path = re.search(r'<path class="series" d="([^"]+)"', svg).group(1)
    assert path.count("M") == 2 and path.count("L") == 93
    assert "<circle" not in svg  # a dense series is a line only
    assert "100 points from 2026-11-01 00:00 to 2026-11-05 03:00 UTC" in svg


def test_a_sparse_series_is_drawn_as_dots() -> None:
    line = charts.Line("risk", _points([0.2, 0.9]), "series risk")
    svg = charts.render(
        charts.Chart("risk", [line], START, START + timedelta(days=1), y_range=(0, 1), limit=0.5)
    )
    assert svg.count('<circle class="dot series risk"') == 2
    assert svg.count('class="limit"') == 1


def test_the_forecast_runs_from_the_last_level_to_the_limit_and_widens_the_time_axis() -> None:
    end = START + timedelta(days=2)
    eta = end + timedelta(days=3)
    forecast = charts.Forecast(
        start=end, value=2.5, eta=eta, low=eta - timedelta(hours=12), high=eta + timedelta(days=1)
    )
    chart = charts.Chart(
        "vibration", [charts.Line("v", _points([2.0] * 48))], START, end, limit=3.5, forecast=forecast
    )
    svg = charts.render(chart)
    x2, y2 = re.search(
        r'<line class="forecast" x1="[^"]+" y1="[^"]+" x2="([^"]+)" y2="([^"]+)"', svg
    ).groups()
    limit_y = re.search(r'<line class="limit" x1="[^"]+" x2="[^"]+" y1="([^"]+)"', svg).group(1)
    assert y2 == limit_y  # the projection ends on the limit line
    right_edge = charts.WIDTH - charts.RIGHT
    assert float(x2) < right_edge  # the axis runs to the end of the band, past the ETA
    assert '<polygon class="band"' in svg and "expected to reach it 2026-11-06 00:00 UTC" in svg
